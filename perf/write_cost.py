"""Server CPU per completion: the front's lean path against the same request through Quart.

    python -m perf.write_cost [--database-url URL] [--redis-url URL] [--rounds 3] [--seconds 4]

Four service processes (``leaderboard serve --workers 1``) on one database and Redis namespace
made for the run: ``quart`` (``COMPLETE_FAST_PATH=0 GROUP_COMMIT=0 GROUP_APPLY=0``: Quart on
Hypercorn answers every completion, one statement and one apply round trip each), ``lean``
(the front's lean path, app/edge/complete_http.py), ``lean+group`` (and group commit,
app/db/group_commit.py) and ``lean+group+apply`` (as shipped: and group apply,
app/redis/group_apply.py). In
alternating rounds, each a closed loop over 32 keep-alive connections, every request a
different (user, action): throughput, p50, and the server process's CPU seconds divided by
the completions it answered. PostgreSQL, Redis and this generator share the machine, so the
throughput moves with whatever else runs; CPU per request is the steadier figure, and the
medians over rounds taken back to back are what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from perf.http_load import HttpConn, OpenLoopResult, close_connections, open_connections
from perf.scenario_http import Writes
from perf.stack import Server, leaderboard_server, new_dataset

USERS = 20_000
# What each server runs with: Quart as before, the lean path, the lean path and group commit.
CONFIGS = {
    "quart": {"COMPLETE_FAST_PATH": "0", "GROUP_COMMIT": "0", "GROUP_APPLY": "0"},
    "lean": {"GROUP_COMMIT": "0", "GROUP_APPLY": "0"},
    "lean+group": {"GROUP_APPLY": "0"},
    "lean+group+apply": {},
}
CONNECTIONS = 32


async def closed_loop(
    conns: list[HttpConn], request: Callable[[], bytes], seconds: float
) -> OpenLoopResult:
    """Each connection sends its next (new) request as soon as the previous is answered."""
    result = OpenLoopResult()
    stop_at = time.perf_counter() + seconds

    def done(conn: HttpConn, status: int, body: bytes) -> None:
        now = time.perf_counter()
        result.latencies.append((now - conn.sent) * 1000)
        result.statuses[status] += 1
        if status and now < stop_at:
            conn.send(request(), done, now)

    start = time.perf_counter()
    for conn in conns:
        conn.send(request(), done, start)
    await asyncio.sleep(seconds + 1.0)
    result.seconds = time.perf_counter() - start
    return result


def start_profile(server: Server, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy on the server process for ``seconds``: collapsed stacks (``.txt``, one line per
    distinct stack with its sample count) and a flame graph (``.svg``)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    pid = str(server.processes()[0].pid)
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            pid,
            "--duration",
            str(int(seconds)),
            "--rate",
            "250",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


async def main(
    database_url: str, redis_url: str, rounds: int, seconds: float, profile: Path | None
) -> None:
    data = new_dataset(database_url, redis_url)
    await data.create(USERS)
    log_dir = Path(tempfile.mkdtemp(prefix="perf-write-cost-"))
    writes = Writes(data.users)
    counter = iter(range(10**9))

    def request() -> bytes:
        return writes(next(counter))

    servers: dict[str, Server] = {}
    figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in CONFIGS}
    try:
        for name, env in CONFIGS.items():
            servers[name] = leaderboard_server(data, 1, log_dir, name=name, **env).start()
        for round_ in range(rounds):
            for name, server in servers.items():
                conns = await open_connections(server.port, CONNECTIONS)
                cpu0 = server.cpu_seconds()
                result = await closed_loop(conns, request, seconds)
                cpu = server.cpu_seconds() - cpu0
                close_connections(conns)
                s = result.summary(name, 0, lambda status: status == 200)
                per = 1e6 * cpu / max(1, s.count)
                figures[name].append((s.throughput, s.p50, per))
                print(
                    f"round {round_ + 1} {name:16s} {s.throughput:7,.0f}/s  p50 {s.p50:6.2f} ms  "
                    f"server CPU {per:5.0f} µs/completion  errors {s.errors} "
                    f"{dict(result.statuses)}",
                    flush=True,
                )
        if profile is not None:
            profile.mkdir(parents=True, exist_ok=True)
            for name, server in servers.items():
                conns = await open_connections(server.port, CONNECTIONS)
                spy = start_profile(server, profile / f"write-{name}.txt", seconds)
                await asyncio.sleep(0.5)  # py-spy attached
                await closed_loop(conns, request, seconds)
                close_connections(conns)
                spy.wait(30)
                print(f"profile of {name}: {profile / f'write-{name}.txt'}", flush=True)
        for name, rows in figures.items():
            print(
                f"median {name:16s} {statistics.median(r[0] for r in rows):7,.0f}/s  "
                f"p50 {statistics.median(r[1] for r in rows):6.2f} ms  "
                f"server CPU {statistics.median(r[2] for r in rows):5.0f} µs/completion",
                flush=True,
            )
        quart = statistics.median(r[2] for r in figures["quart"])
        for name in list(CONFIGS)[1:]:
            other = statistics.median(r[2] for r in figures[name])
            print(f"{name} ÷ quart, server CPU per completion: {other / quart:.2f}", flush=True)
    finally:
        for server in servers.values():
            server.stop()
        await data.drop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m perf.write_cost", description=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("PERF_DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("PERF_REDIS_URL"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--profile", type=Path, help="also record py-spy profiles into this folder")
    args = parser.parse_args()
    if not (args.database_url and args.redis_url):
        parser.error("give --database-url and --redis-url (or PERF_DATABASE_URL / PERF_REDIS_URL)")
    import uvloop

    uvloop.run(main(args.database_url, args.redis_url, args.rounds, args.seconds, args.profile))
