"""One command for every scenario: `python -m perf.run [--quick]` (see perf/README.md).

Starts its own stack (PostgreSQL and Redis: --database-url/--redis-url, else testcontainers
when a Docker engine answers, else the embedded wheels), a database and Redis namespace for
the run, and the service with --workers processes; runs the scenarios with their ceilings;
writes results.json, results.md and PNG plots under perf/results/<run>/. Every run is bounded
(--max-minutes) and sends traffic only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from perf import report
from perf.scenario_boards import BOARD_USERS, RANKED, boards_scenario
from perf.scenario_http import (
    Knobs,
    Writes,
    closed,
    limits_scenario,
    read_scenario,
    say,
    write_ceilings,
    write_scenario,
)
from perf.scenario_live import live_scenario, mixed_scenario
from perf.stack import (
    Dataset,
    backing_servers,
    granian_server,
    leaderboard_server,
    new_dataset,
    raise_fd_limit,
    warm_board,
)

SCENARIOS = ("read", "granian", "write", "limits", "live", "mixed", "boards")
RESULTS = Path(__file__).with_name("results")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} CPU ({cpu}), {memory:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def git_commit() -> str:
    def git(*argv: str) -> str:
        done = subprocess.run(
            ["git", *argv], cwd=RESULTS.parent.parent, capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" (with uncommitted changes)" if git("status", "--porcelain", "app") else "")


async def server_versions(admin_url: str, redis_url: str) -> str:
    import asyncpg
    from redis.asyncio import Redis

    conn = await asyncpg.connect(admin_url)
    try:
        pg = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    redis = Redis.from_url(redis_url)
    try:
        info = await redis.info("server")
    finally:
        await redis.aclose()
    flavour = "Valkey" if "valkey_version" in info else "Redis"
    version = info.get("valkey_version") or info.get("redis_version")
    return f"PostgreSQL {pg.split()[0]}, {flavour} {version}"


async def run(
    args: argparse.Namespace, admin_url: str, redis_url: str, backing: str
) -> dict[str, Any]:
    knobs = Knobs.make(args.quick)
    only = set(args.only.split(",")) if args.only else set(SCENARIOS)
    log_dir = Path(tempfile.mkdtemp(prefix="perf-logs-"))
    results: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["python", "-m", "perf.run", *sys.argv[1:]])
        + "".join(
            f" (with {name} set)"
            for name in ("PERF_DATABASE_URL", "PERF_REDIS_URL")
            if os.environ.get(name)
        ),
        "machine": machine(),
        "commit": git_commit(),
        "workers": args.workers,
        "backing": backing,
        "quick": args.quick,
        "fd_limit": raise_fd_limit(),
        "logs": str(log_dir),
    }
    results["backing"] = f"{backing}: {await server_versions(admin_url, redis_url)}"
    data: Dataset = new_dataset(admin_url, redis_url)
    # The boards scenario brings its own players (writers, ceilings, a ranked week).
    users = args.users + (BOARD_USERS if "boards" in only else 0)
    say(f"preparing database {data.name} with {users:,} users (logs in {log_dir})")
    await data.create(users)
    board_users = (
        (data.take(9_000), data.take(2_000), data.take(RANKED)) if "boards" in only else None
    )
    writers = data.take(args.users - 2_000 - 600 - 10)
    ceiling_users = data.take(2_000)
    limit_users = data.take(200 if args.quick else 500)
    top = data.take(10)
    writes, cursor = Writes(writers), [0]
    try:
        server = leaderboard_server(data, args.workers, log_dir).start()
        try:
            await warm_board(server.port)
            if "read" in only:
                say("== read")
                results["read"] = await read_scenario(server, knobs, args.workers, log_dir)
            if "write" in only:
                say("== write")
                results["write"] = await write_scenario(server, data, knobs, writes, cursor)
                results["write_ceilings"] = await write_ceilings(
                    data, ceiling_users, knobs.step_seconds
                )
            if "limits" in only:
                say("== limits")
                results["limits"] = await limits_scenario(server, limit_users)
        finally:
            server.stop()
        if "granian" in only:
            say(f"== the same app on granian ({args.workers} workers)")
            other = granian_server(data, args.workers, log_dir).start()
            try:
                await warm_board(other.port)
                results["granian"] = {
                    "board": await closed(other, "/api/leaderboard", knobs),
                    "healthz": await closed(other, "/healthz", knobs),
                }
                for s in results["granian"].values():
                    say("granian " + s.line())
            finally:
                other.stop()
        if "live" in only:
            # Each client process holds up to 5,000 sockets, each server process about as many.
            if results["fd_limit"] < 6_000:
                say(f"open-file hard limit {results['fd_limit']}: too low for 10,000 clients")
            for clients, action in ((2_000, 0), (10_000, 3)):
                say(f"== live {clients:,}")
                results[f"live_{clients}"] = await live_scenario(
                    data, clients, args.workers, writers, top, action, knobs, log_dir
                )
        if "mixed" in only:
            say("== mixed")
            results["mixed"] = await mixed_scenario(
                data,
                args.workers,
                writers,
                top,
                6,
                writes,
                cursor,
                knobs,
                log_dir,
                read_rate=1500,
                write_rate=200,
                clients=2_000,
            )
        if board_users is not None:
            say("== boards")
            results["boards"] = await boards_scenario(
                data, args.workers, *board_users, knobs, log_dir
            )
    finally:
        await data.drop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m perf.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="short steps (~3 minutes in all)")
    parser.add_argument("--workers", type=int, default=2, help="service processes (default 2)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("PERF_DATABASE_URL"),
        help="an admin PostgreSQL URL (a database is created and dropped)",
    )
    parser.add_argument("--redis-url", default=os.environ.get("PERF_REDIS_URL"))
    parser.add_argument("--users", type=int, default=40_000)
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--out", type=Path, help="results folder (default perf/results/<time>)")
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=0,
        help="hard bound on the run (default 8 with --quick, else 20)",
    )
    args = parser.parse_args()
    limit = args.max_minutes or (8 if args.quick else 20)

    def out_of_time(*_: object) -> None:
        raise TimeoutError(f"the run passed --max-minutes={limit:g}")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(int(limit * 60))
    raise_fd_limit()
    started = time.monotonic()
    given = bool(args.database_url and args.redis_url)
    with backing_servers(args.database_url, args.redis_url) as (admin_url, redis_url):
        backing = "given URLs" if given else "started by the run"
        import uvloop

        results = uvloop.run(run(args, admin_url, redis_url, backing))
    signal.alarm(0)
    results["minutes"] = round((time.monotonic() - started) / 60, 1)
    folder = args.out or RESULTS / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    table = report.write_all(results, folder)
    print("\n" + table.read_text())
    print(f"results: {folder}/ (results.json, results.md, *.png)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
