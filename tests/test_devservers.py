"""The embedded PostgreSQL/Valkey servers behind `leaderboard dev` and the test suite."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import time
from typing import Any

import asyncpg
import psutil
import pytest
import redis

from app.dev.servers import EmbeddedPostgres, EmbeddedRedis, ServerStartError, throwaway_servers

REPO = pathlib.Path(__file__).resolve().parents[1]


def pg_fetch(url: str, sql: str) -> list[Any]:
    async def run() -> list[Any]:
        conn = await asyncpg.connect(url)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(run())


def gone(pid: int) -> bool:
    """The process has exited (a zombie left to a non-reaping init counts as exited)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return gone(pid)


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_postgres_runs_queries_and_keeps_data_across_restarts(tmp_path: pathlib.Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg", durable=False)
    pg.start()
    pid, port = pg.pid, pg.port
    assert pid is not None
    pg.start()  # idempotent
    assert pg.pid == pid
    assert pg.url == f"postgresql://postgres@127.0.0.1:{port}/postgres"
    assert pg_fetch(pg.url, "SHOW server_encoding") == [("UTF8",)]
    pg_fetch(pg.url, "CREATE TABLE kept AS SELECT 'ada' AS name")

    pg.stop()
    pg.stop()  # safe twice
    assert gone(pid)
    assert port_free(port)

    with EmbeddedPostgres(tmp_path / "pg", durable=False) as again:
        assert pg_fetch(again.url, "SELECT name FROM kept") == [("ada",)]
        assert pg_fetch(again.url, "SHOW max_connections") == [("200",)]
        assert pg_fetch(again.url, "SHOW fsync") == [("off",)]


def test_postgres_restarts_after_unclean_kill(tmp_path: pathlib.Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg")
    pg.start()
    pg_fetch(pg.url, "CREATE TABLE t AS SELECT 1 AS x")
    pid = pg.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid)
    # Make the stale postmaster.pid name a live process that is not postgres (pid reuse).
    with subprocess.Popen(["sleep", "30"]) as other:
        pidfile = tmp_path / "pg" / "postmaster.pid"
        lines = pidfile.read_text().splitlines(keepends=True)
        pidfile.write_text("".join([f"{other.pid}\n", *lines[1:]]))
        try:
            with EmbeddedPostgres(tmp_path / "pg") as again:
                assert pg_fetch(again.url, "SELECT x FROM t") == [(1,)]
        finally:
            other.kill()
    pg.stop()  # the killed instance: nothing left to do, must not raise


def test_postgres_refuses_a_data_dir_in_use(tmp_path: pathlib.Path) -> None:
    with EmbeddedPostgres(tmp_path / "pg", durable=False) as pg:
        with pytest.raises(ServerStartError, match="used by a running postgres"):
            EmbeddedPostgres(tmp_path / "pg", durable=False).start()
        assert pg_fetch(pg.url, "SELECT 1") == [(1,)]


def test_postgres_start_error_shows_log_tail(tmp_path: pathlib.Path) -> None:
    with EmbeddedPostgres(tmp_path / "pg", durable=False):
        pass
    with open(tmp_path / "pg" / "postgresql.conf", "a") as conf:
        conf.write("\nwork_mem = 'lots'\n")
    with pytest.raises(ServerStartError, match=r"(?s)exited with code.*work_mem"):
        EmbeddedPostgres(tmp_path / "pg", durable=False).start()


@pytest.mark.parametrize("server_class", [EmbeddedPostgres, EmbeddedRedis])
def test_taken_port_fails_with_one_line_message(
    tmp_path: pathlib.Path, server_class: type[EmbeddedPostgres | EmbeddedRedis]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerStartError) as error:
            server_class(tmp_path / "srv", port=port).start()
    assert str(error.value) == f"{server_class.name}: port {port} on 127.0.0.1 is already in use"


def test_redis_with_persist_keeps_keys(tmp_path: pathlib.Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", persist=True)
    server.start()
    pid, port = server.pid, server.port
    assert pid is not None
    assert server.url == f"redis://127.0.0.1:{port}/0"
    with redis.Redis.from_url(server.url) as client:
        client.set("kept", "yes")
    server.stop()
    server.stop()
    assert gone(pid)
    assert port_free(port)

    with EmbeddedRedis(tmp_path / "redis", persist=True) as again:
        with redis.Redis.from_url(again.url) as client:
            assert client.get("kept") == b"yes"


def test_redis_without_persist_writes_no_data(tmp_path: pathlib.Path) -> None:
    for _ in range(2):
        with EmbeddedRedis(tmp_path / "redis") as server:
            with redis.Redis.from_url(server.url) as client:
                assert client.get("gone") is None
                client.set("gone", "1")
    assert [p.name for p in (tmp_path / "redis").iterdir()] == ["valkey.log"]


def test_throwaway_servers_leave_nothing_behind() -> None:
    with throwaway_servers() as (pg, valkey):
        assert pg_fetch(pg.url, "SELECT 1") == [(1,)]
        with redis.Redis.from_url(valkey.url) as client:
            assert client.ping()
        pids, root = [pg.pid, valkey.pid], pg.data_dir.parent
    assert all(pid is not None and gone(pid) for pid in pids)
    assert not root.exists()


PARENT = """
import sys, time, pathlib
from app.dev.servers import EmbeddedPostgres, EmbeddedRedis
pg = EmbeddedPostgres(pathlib.Path(sys.argv[1]) / "pg", durable=False)
pg.start()
valkey = EmbeddedRedis(pathlib.Path(sys.argv[1]) / "redis")
valkey.start()
print(pg.pid, valkey.pid, flush=True)
if sys.argv[2] == "sleep":
    time.sleep(60)
"""


@pytest.mark.parametrize("how", ["exit", "SIGKILL", "SIGINT"])
def test_servers_die_with_their_parent(tmp_path: pathlib.Path, how: str) -> None:
    """Normal exit runs atexit; Ctrl-C (SIGINT to the foreground group) too; SIGKILL skips
    atexit, so the kernel's parent-death signal has to stop the servers."""
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(PARENT), str(tmp_path), how.lower()],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.getenv("PYTHONPATH", "")])},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    assert parent.stdout is not None
    pids = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(pids) == 2, "parent failed to start the servers"
    if how != "exit":
        os.killpg(parent.pid, getattr(signal, how))
    parent.wait(timeout=10)
    assert all(wait_gone(pid) for pid in pids)
