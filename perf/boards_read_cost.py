"""Server CPU per request of the board reads, against a constant Quart response in the same run.

    python -m perf.boards_read_cost [--database-url URL] [--redis-url URL]

One service process on 127.0.0.1, a database with 12,000 players ranked this week, and for
each request kind a closed loop over 8 connections for 5 s: throughput, p50, and the server's
CPU seconds divided by the requests it answered. On a shared machine the absolute figures
move from run to run; the ratio to `/healthz` (the framework's own cost) is what to compare.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from perf.http_load import close_connections, closed_loop_python, get_request, open_connections
from perf.scenario_boards import (
    get_with_token,
    page_100_cursor,
    reconcile,
    seed_ranked,
    wait_loaded,
)
from perf.stack import leaderboard_server, new_dataset

RANKED = 12_000


async def main(database_url: str, redis_url: str) -> None:
    data = new_dataset(database_url, redis_url)
    await data.create(RANKED)
    log_dir = Path(tempfile.mkdtemp(prefix="perf-read-cost-"))
    try:
        period = await seed_ranked(data, data.users)
        server = leaderboard_server(data, 1, log_dir).start()
        try:
            await reconcile(data)
            await wait_loaded(data, period, RANKED)
            cursor = await page_100_cursor(data, period)
            around = "/api/leaderboard?board=weekly&around=me&radius=5"
            kinds = {
                "GET /healthz (Quart, constant)": get_request("/healthz"),
                "GET /api/leaderboard (fast path)": get_request("/api/leaderboard"),
                "?board=weekly (top 10)": get_request("/api/leaderboard?board=weekly"),
                "page 100, limit=100": get_request(
                    f"/api/leaderboard?board=weekly&limit=100&cursor={cursor}"
                ),
                "around=me, radius 5": get_with_token(around, data.users[0].token),
            }
            baseline = 0.0
            for name, request in kinds.items():
                conns = await open_connections(server.port, 8)
                cpu0, t0 = server.cpu_seconds(), time.perf_counter()
                result = await closed_loop_python(conns, request, 5)
                cpu = server.cpu_seconds() - cpu0
                close_connections(conns)
                s = result.summary(name, 0, lambda status: status == 200)
                per = 1e6 * cpu / max(1, s.count)
                baseline = baseline or per
                print(
                    f"{name:34s} {s.throughput:8,.0f}/s  p50 {s.p50:6.2f} ms  "
                    f"server CPU {per:6.0f} µs/request ({per / baseline:.2f}x /healthz)  "
                    f"errors {s.errors}  ({time.perf_counter() - t0:.1f} s)",
                    flush=True,
                )
        finally:
            server.stop()
    finally:
        await data.drop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m perf.boards_read_cost", description=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("PERF_DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("PERF_REDIS_URL"))
    args = parser.parse_args()
    if not (args.database_url and args.redis_url):
        parser.error("give --database-url and --redis-url (or PERF_DATABASE_URL / PERF_REDIS_URL)")
    import uvloop

    uvloop.run(main(args.database_url, args.redis_url))
