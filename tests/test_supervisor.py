"""`leaderboard serve --workers 2` as an operator meets it: a worker that dies is replaced while
the other keeps serving, and killing the supervisor outright leaves no worker holding the port."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.edge.serve import _watch_parent
from app.edge.supervisor import Backoff
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads worker pids from /proc"
)


def workers_of(pid: int) -> set[int]:
    """The worker processes of supervisor ``pid`` (multiprocessing spawn children; the
    resource tracker, also a child, is not one)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == pid and b"spawn_main" in cmdline:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # a zombie has exited


def eventually(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


def healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture
def node(service_env: dict[str, str], tmp_path: Path, redis: Any) -> Iterator[ServerProcess]:
    server = ServerProcess(service_env, tmp_path, workers=2).start()
    try:
        assert server.process is not None
        eventually(lambda: len(workers_of(server.process.pid)) == 2, 20, "two workers")
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            for pid in workers_of(server.process.pid):
                os.kill(pid, signal.SIGKILL)
        server.stop()


def test_workers_exit_with_a_killed_supervisor_and_the_port_is_free_again(
    node: ServerProcess, service_env: dict[str, str], tmp_path: Path
) -> None:
    assert node.process is not None
    workers = workers_of(node.process.pid)
    node.process.kill()
    node.process.wait()
    try:
        eventually(lambda: not any(alive(pid) for pid in workers), 10, "orphaned workers exit")
    finally:
        for pid in workers:  # do not leave them behind when the assertion fails
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    # The symptom operators met: a restart failing with "Address already in use".
    with ServerProcess(service_env, tmp_path, workers=2, port=node.port) as again:
        assert healthy(again.base_url)


def test_a_dead_worker_is_replaced_while_the_other_keeps_serving(node: ServerProcess) -> None:
    assert node.process is not None
    supervisor = node.process.pid
    before = workers_of(supervisor)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    # The survivor holds the port all along: every request is answered.
    replaced = eventually(
        lambda: (
            healthy(node.base_url)
            and len(now := workers_of(supervisor)) == 2
            and victim not in now
            and now
        ),
        20,
        "a new worker in place of the killed one",
    )
    assert len(replaced & before) == 1
    assert node.process.poll() is None
    for _ in range(20):
        assert healthy(node.base_url)
    log = eventually(lambda: "restarted" in node.log() and node.log(), 5, "a restart line")
    assert f"pid {victim}" in log and "SIGKILL" in log
    assert node.stop() == 0  # and SIGTERM still stops everything cleanly


def test_restarts_back_off_while_a_worker_keeps_dying_and_reset_after_a_stable_run() -> None:
    backoff = Backoff(first=0.5, cap=30.0, stable_after=30.0)
    quick = [backoff.delay_after(lived=1.0) for _ in range(9)]
    assert quick == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert backoff.delay_after(lived=45.0) == 0.5
    assert backoff.delay_after(lived=1.0) == 1.0


def test_ctrl_c_to_the_whole_group_stops_the_node_without_restarts(node: ServerProcess) -> None:
    assert node.process is not None
    # What a terminal does on Ctrl-C: SIGINT to every process of the group at once.
    for pid in (node.process.pid, *workers_of(node.process.pid)):
        os.kill(pid, signal.SIGINT)
    assert node.process.wait(30) == 0
    assert "restart" not in node.log()


async def test_a_worker_notices_its_supervisor_is_gone_without_the_kernel_s_help() -> None:
    stopping = asyncio.Event()
    await asyncio.wait_for(_watch_parent(os.getppid() + 1, stopping), 5)
    assert stopping.is_set()
