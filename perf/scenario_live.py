"""The live scenarios (WebSocket fan-out, its bare ceiling) and the mixed one.

The clients are perf/live_broadcast.py's lean clients (one process per 5,000), which note
when each version reached them; the commit time of version v is taken just before its POST
is sent, so commit -> receipt includes the HTTP request, the apply script, the publish, the
node's subscription and the fan-out.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import orjson

from perf.http_load import (
    HttpConn,
    close_connections,
    get_request,
    open_connections,
    open_loop,
    post_json,
)
from perf.live_broadcast import client_process
from perf.scenario_http import BOARD, COMPLETE, Knobs, Writes, say
from perf.stack import HOST, Dataset, PerfUser, Server, leaderboard_server
from perf.stats import Summary, summarize


async def request_once(conn: HttpConn, request: bytes) -> tuple[int, bytes]:
    future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
    conn.send(request, lambda _c, status, body: future.set_result((status, body)), 0.0)
    return await asyncio.wait_for(future, 10)


class Watchers:
    """N clients in client processes, connected to ``port``."""

    def __init__(self, port: int, tokens: list[str]) -> None:
        self.targets = [(port, t) for t in tokens]
        self.procs = max(1, -(-len(tokens) // 5000))
        ctx = mp.get_context("spawn")
        self.done = ctx.Event()
        self.pipes: list[mp.connection.Connection] = []
        self.processes: list[mp.process.BaseProcess] = []
        for k in range(self.procs):
            ours, theirs = ctx.Pipe()
            process = ctx.Process(
                target=client_process, args=(self.targets[k :: self.procs], theirs, self.done)
            )
            process.start()
            self.processes.append(process)
            self.pipes.append(ours)

    async def connected(self, timeout: float = 120) -> int:
        loop = asyncio.get_running_loop()
        counts = await asyncio.wait_for(
            asyncio.gather(*(loop.run_in_executor(None, p.recv) for p in self.pipes)), timeout
        )
        return sum(counts)

    async def finish(self) -> list[dict[int, float]]:
        self.done.set()
        loop = asyncio.get_running_loop()
        seen: list[dict[int, float]] = []
        for part in await asyncio.gather(*(loop.run_in_executor(None, p.recv) for p in self.pipes)):
            seen += part
        return seen

    def stop(self) -> None:
        self.done.set()
        for process in self.processes:
            process.join(15)
            if process.is_alive():
                process.terminate()


def deliveries(name: str, seen: list[dict[int, float]], commits: dict[int, float]) -> Summary:
    latencies: list[float] = []
    last: list[float] = []
    missing = 0
    for version, t0 in commits.items():
        arrivals = [(s[version] - t0) * 1000 for s in seen if version in s]
        missing += len(seen) - len(arrivals)
        latencies += arrivals
        if arrivals:
            last.append(max(arrivals))
    span = max(commits.values()) - min(commits.values()) if len(commits) > 1 else 1.0
    summary = summarize(name, latencies, span, missing)
    last.sort()
    summary.extra = {
        "clients": len(seen),
        "updates": len(commits),
        "missing_deliveries": missing,
        "last_client_median_ms": round(last[len(last) // 2], 2) if last else None,
        "last_client_max_ms": round(last[-1], 2) if last else None,
    }
    return summary


async def drive_top10(
    port: int, top: list[PerfUser], updates: int, gap: float, first_action: int
) -> dict[int, float]:
    """Give ten users 100 points each (they become the top 10), then ``updates`` more rounds
    of +100, one at a time: each changes the top 10, so each is one broadcast (version + 1)."""
    conns = await open_connections(port, 1)
    conn = conns[0]
    try:
        for user in top:
            status, body = await request_once(
                conn,
                post_json(
                    COMPLETE, f'{{"actionId":"perf_big_{first_action:02d}"}}'.encode(), user.token
                ),
            )
            assert status == 200, body
        await asyncio.sleep(1.0)
        status, body = await request_once(conn, get_request(BOARD))
        version = int(orjson.loads(body)["version"])
        commits: dict[int, float] = {}
        for i in range(updates):
            user = top[i % len(top)]
            action = first_action + 1 + i // len(top)
            t0 = time.time()
            status, body = await request_once(
                conn,
                post_json(COMPLETE, f'{{"actionId":"perf_big_{action:02d}"}}'.encode(), user.token),
            )
            if status != 200 or not orjson.loads(body).get("top10Changed"):
                raise RuntimeError(f"an update did not change the top 10: {status} {body[:200]!r}")
            version += 1
            commits[version] = t0
            await asyncio.sleep(gap)
        await asyncio.sleep(1.0)
        return commits
    finally:
        close_connections(conns)


async def live_scenario(
    data: Dataset,
    clients: int,
    workers: int,
    watchers: list[PerfUser],
    top: list[PerfUser],
    big_action: int,
    knobs: Knobs,
    log_dir: Path,
) -> dict[str, object]:
    say(f"live: {clients:,} WebSocket clients on {workers} server process(es)")
    updates = 10 if knobs.quick else 20
    server = leaderboard_server(
        data, workers, log_dir, name=f"live{clients}", WS_MAX_CONNECTIONS=str(clients + 100)
    ).start()
    out: dict[str, object] = {}
    group: Watchers | None = None
    try:
        await asyncio.sleep(1.0)
        rss0 = server.rss_bytes()
        t0 = time.perf_counter()
        group = Watchers(server.port, [u.token for u in watchers[:clients]])
        held = await group.connected()
        say(f"live: {held:,} clients connected in {time.perf_counter() - t0:.1f} s")
        await asyncio.sleep(1.0)
        per_conn = (server.rss_bytes() - rss0) / max(1, held)
        commits = await drive_top10(server.port, top, updates, 0.5, big_action)
        seen = await group.finish()
        summary = deliveries(f"live {clients:,} clients", seen, commits)
        summary.extra["server_rss_per_connection_kib"] = round(per_conn / 1024, 2)
        summary.extra["server_processes"] = workers
        summary.extra["client_processes"] = group.procs
        say(
            summary.line() + f"  last-client median {summary.extra['last_client_median_ms']} ms,"
            f" {summary.extra['server_rss_per_connection_kib']} KiB/conn"
        )
        out["app"] = summary
        board = await board_message(server.port)
    finally:
        if group is not None:
            group.stop()
        server.stop()
    out["ceiling"] = await fanout_ceiling(
        board, clients, workers, [u.token for u in watchers[:clients]], updates, log_dir
    )
    return out


async def board_message(port: int) -> bytes:
    conns = await open_connections(port, 1)
    try:
        _, body = await request_once(conns[0], get_request(BOARD))
    finally:
        close_connections(conns)
    board = orjson.loads(body)
    return orjson.dumps(
        {
            "type": "LEADERBOARD_UPDATE",
            "epoch": board["epoch"],
            "version": 0,
            "data": {"users": board["users"], "updatedAt": board["updatedAt"]},
        }
    )


async def fanout_ceiling(
    message: bytes, clients: int, workers: int, tokens: list[str], updates: int, log_dir: Path
) -> Summary:
    """The same bytes to the same clients from a bare fan-out server (no app, no Redis)."""
    say(f"live ceiling: bare fan-out of the same {len(message) + 4}-byte frame")
    template = Path(tempfile.mkstemp(prefix="board-", suffix=".json", dir=log_dir)[1])
    template.write_bytes(message)
    server = Server(
        "fanout",
        [sys.executable, "-m", "perf.fanout", "{port}", str(workers), str(template)],
        dict(os.environ),
        log_dir,
    )
    group: Watchers | None = None
    try:
        server.start(ready_path=None)
        group = Watchers(server.port, tokens)
        await group.connected()
        await asyncio.sleep(1.0)
        commits: dict[int, float] = {}
        assert server.process is not None
        for version in range(1, updates + 1):
            commits[version] = time.time()
            os.killpg(server.process.pid, signal.SIGUSR1)
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)
        summary = deliveries(f"fan-out ceiling {clients:,} clients", await group.finish(), commits)
        say("ceiling " + summary.line())
        return summary
    finally:
        if group is not None:
            group.stop()
        server.stop()


async def mixed_scenario(
    data: Dataset,
    workers: int,
    watchers: list[PerfUser],
    top: list[PerfUser],
    big_action: int,
    writes: Writes,
    cursor: list[int],
    knobs: Knobs,
    log_dir: Path,
    read_rate: float,
    write_rate: float,
    clients: int,
) -> dict[str, object]:
    say(
        f"mixed: {clients:,} live clients + reads {read_rate:,.0f}/s + writes {write_rate:,.0f}/s"
        " + top-10 changes 2/s"
    )
    server = leaderboard_server(
        data, workers, log_dir, name="mixed", WS_MAX_CONNECTIONS=str(clients + 100)
    ).start()
    group: Watchers | None = None
    read_conns: list[HttpConn] = []
    write_conns: list[HttpConn] = []
    seconds = knobs.step_seconds * 2
    try:
        group = Watchers(server.port, [u.token for u in watchers[:clients]])
        await group.connected()
        read_conns = await open_connections(server.port, 500)
        write_conns = await open_connections(server.port, 128)
        board = get_request(BOARD)
        start = cursor[0]
        cursor[0] += int(write_rate * seconds)
        reads, writes_result, commits = await asyncio.gather(
            open_loop(read_conns, lambda i: board, read_rate, seconds),
            open_loop(write_conns, lambda i: writes(start + i), write_rate, seconds),
            drive_top10(server.port, top, int(seconds * 2) - 2, 0.5, big_action),
        )
        seen = await group.finish()
        out: dict[str, object] = {
            "read": reads.summary("mixed read", read_rate, lambda s: s == 200),
            "write": writes_result.summary("mixed write", write_rate, lambda s: s == 200),
            "live": deliveries(f"mixed live {clients:,} clients", seen, commits),
        }
        for part in out.values():
            say(part.line())  # type: ignore[attr-defined]
        return out
    finally:
        close_connections(read_conns)
        close_connections(write_conns)
        if group is not None:
            group.stop()
        server.stop()


__all__ = ["HOST", "live_scenario", "mixed_scenario"]
