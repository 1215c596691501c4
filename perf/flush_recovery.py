"""Redis loses its data under a stream of writes: do writes wait for a rebuild? When is the
board whole again? ``python -m perf.flush_recovery`` (see perf/README.md).

Starts the service as perf/ does (``leaderboard serve --workers N``) on a database made for
the run (--database-url / PERF_DATABASE_URL, else testcontainers or the embedded wheels) and a
Redis it starts for itself: the run issues ``FLUSHALL``, so it never touches a given or shared
Redis. It ranks --users users directly in PostgreSQL, sends an open-loop stream of
completions (each from a user who has not written yet, so the rate limit never bites), issues
``FLUSHALL`` halfway, and reports the write latency (from each request's scheduled send time)
in the window before and after the flush, and how long until ``GET /api/leaderboard`` shows a
full board under a new epoch. Traffic goes only to 127.0.0.1; every step is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from perf.http_load import HttpConn, close_connections, get_request, open_connections, post_json
from perf.stack import (
    SMALL_ACTIONS,
    backing_servers,
    leaderboard_server,
    new_dataset,
    raise_fd_limit,
)
from perf.stats import Summary, summarize

BOARD = "/api/leaderboard"
COMPLETE = "/api/action/complete"
POLL_SECONDS = 0.05
# Scores spread over a wide range, reached at different times: a realistic ranking to rebuild.
RANK_USERS_SQL = """
UPDATE users
   SET score = 1 + floor(random() * 5000)::int,
       reached_at = now() - random() * interval '1 day',
       updated_at = now() - interval '1 day'
"""

perf_counter = time.perf_counter


@dataclass
class Sample:
    at: float  # scheduled send time, seconds from the start of the stream
    latency_ms: float  # from the scheduled send time to the complete response
    status: int


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    flushed_at: float = 0.0  # seconds from the start of the stream
    recovered_after: float | None = None  # seconds from the flush to a full board, new epoch
    board_checks: int = 0
    board_errors: int = 0


def say(text: str) -> None:
    print(f"  {text}", flush=True)


async def write_stream(
    port: int, requests: list[bytes], rate: float, connections: int, run: Run, start: float
) -> None:
    """Open loop: request i is due at ``start + i / rate`` whether or not earlier ones have
    answered (waiting for a free connection if none is idle, its clock already running)."""
    conns = await open_connections(port, connections)
    idle: deque[HttpConn] = deque(conns)
    backlog: deque[tuple[int, float]] = deque()
    finished = asyncio.get_running_loop().create_future()
    answered = 0

    def done(conn: HttpConn, status: int, body: bytes) -> None:
        nonlocal answered
        now = perf_counter()
        run.samples.append(
            Sample(conn.scheduled - start, (now - conn.scheduled) * 1000, status or -1)
        )
        answered += 1
        if answered >= len(requests) and not finished.done():
            finished.set_result(None)
        if status == 0:
            return
        if backlog:
            index, scheduled = backlog.popleft()
            conn.send(requests[index], done, scheduled)
        else:
            idle.append(conn)

    try:
        for index, request in enumerate(requests):
            due = start + index / rate
            if (wait := due - perf_counter()) > 0:
                await asyncio.sleep(wait)
            if idle:
                idle.popleft().send(request, done, due)
            else:
                backlog.append((index, due))
        try:
            await asyncio.wait_for(finished, 30.0)
        except TimeoutError:
            say(f"{len(requests) - answered} writes never answered within 30 s")
    finally:
        close_connections(conns)


async def read_board(conn: HttpConn) -> tuple[int, bytes]:
    """One GET on ``conn``; status 0 when the connection is gone, -1 after 5 s unanswered."""
    answer: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()

    def done(_conn: HttpConn, status: int, body: bytes) -> None:
        if not answer.done():
            answer.set_result((status, body))

    if conn.lost.done():
        return 0, b""
    conn.send(get_request(BOARD), done, perf_counter())
    try:
        return await asyncio.wait_for(answer, 5.0)
    except TimeoutError:
        conn.done = None
        return -1, b""


async def watch_board(port: int, run: Run, old_epoch: str, flushed: asyncio.Event) -> None:
    """After the flush, poll the board until it is full again under a new epoch."""
    await flushed.wait()
    # Opened now, not before: an idle keep-alive connection is closed by the server.
    (conn,) = await open_connections(port, 1)
    try:
        began = perf_counter()
        while perf_counter() - began < 60:
            status, body = await read_board(conn)
            run.board_checks += 1
            if status != 200:
                run.board_errors += 1
                close_connections([conn])
                (conn,) = await open_connections(port, 1)
            else:
                board = json.loads(body)
                if board["epoch"] != old_epoch and len(board["users"]) == 10:
                    run.recovered_after = perf_counter() - began
                    return
            await asyncio.sleep(POLL_SECONDS)
    finally:
        close_connections([conn])


async def flush_at(
    redis_url: str, when: float, run: Run, start: float, flushed: asyncio.Event
) -> None:
    await asyncio.sleep(max(0.0, start + when - perf_counter()))
    redis = Redis.from_url(redis_url)
    try:
        run.flushed_at = perf_counter() - start
        await redis.flushall()
        flushed.set()
    finally:
        await redis.aclose()


async def full_board(port: int, at_most: float = 60.0) -> str:
    """Wait until the board shows 10 users from Redis (epoch not "0"); return its epoch."""
    (conn,) = await open_connections(port, 1)
    try:
        deadline = perf_counter() + at_most
        while perf_counter() < deadline:
            status, body = await read_board(conn)
            if status == 200:
                board = json.loads(body)
                if board["epoch"] != "0" and len(board["users"]) == 10:
                    return str(board["epoch"])
            await asyncio.sleep(0.2)
    finally:
        close_connections([conn])
    raise RuntimeError("the board never filled before the stream")


def longest_stall(run: Run, since: float, until: float) -> float:
    """The longest stretch (s) in [since, until) during which no write completed."""
    done = sorted(s.at + s.latency_ms / 1000 for s in run.samples)
    marks = [since, *(t for t in done if since <= t < until), until]
    return max(b - a for a, b in itertools.pairwise(marks))


def window(run: Run, name: str, since: float, until: float) -> Summary:
    chosen = [s for s in run.samples if since <= s.at < until]
    summary = summarize(name, [s.latency_ms for s in chosen], until - since)
    summary.errors = sum(1 for s in chosen if s.status != 200)
    return summary


async def main(args: argparse.Namespace) -> dict[str, object]:
    raise_fd_limit()
    log_dir = Path(tempfile.mkdtemp(prefix="leaderboard-flush-"))
    total = int(args.rate * args.seconds)
    if total > args.users:
        raise SystemExit(f"--users must be at least rate x seconds ({total})")
    # No Redis URL: the run starts its own, the only kind it may FLUSHALL.
    with backing_servers(args.database_url, None) as (admin_url, redis_url):
        data = new_dataset(admin_url, redis_url)
        say(f"creating {args.users:,} users in {data.name}")
        await data.create(args.users)
        conn = await asyncpg.connect(data.url)
        try:
            await conn.execute(RANK_USERS_SQL)
        finally:
            await conn.close()
        server = leaderboard_server(data, args.workers, log_dir)
        try:
            started = perf_counter()
            server.start(timeout=120)
            old_epoch = await full_board(server.port)
            say(f"server up and board full after {perf_counter() - started:.1f} s")
            requests = [
                post_json(
                    COMPLETE,
                    json.dumps({"actionId": f"perf_{i % SMALL_ACTIONS:03d}"}).encode(),
                    user.token,
                )
                for i, user in enumerate(data.users[:total])
            ]
            run = Run()
            flushed = asyncio.Event()
            start = perf_counter() + 0.1
            half = args.seconds / 2
            say(f"{args.rate:.0f} writes/s for {args.seconds:.0f} s; FLUSHALL at {half:.0f} s")
            await asyncio.gather(
                write_stream(server.port, requests, args.rate, args.connections, run, start),
                flush_at(redis_url, args.seconds / 2, run, start, flushed),
                watch_board(server.port, run, old_epoch, flushed),
            )
        finally:
            server.stop()
            await data.drop()
    span = args.window
    before = window(run, "writes, 10 s before FLUSHALL", run.flushed_at - span, run.flushed_at)
    after = window(run, "writes, 10 s after FLUSHALL", run.flushed_at, run.flushed_at + span)
    first = window(run, "writes, 1 s after FLUSHALL", run.flushed_at, run.flushed_at + 1)
    for summary in (before, after, first):
        say(summary.line())
    stalls = {
        "before": longest_stall(run, run.flushed_at - span, run.flushed_at),
        "after": longest_stall(run, run.flushed_at, run.flushed_at + span),
    }
    say(
        f"longest stretch without a completed write: {stalls['before']:.2f} s before,"
        f" {stalls['after']:.2f} s after FLUSHALL"
    )
    recovered = run.recovered_after
    say(
        "board full under a new epoch "
        + (f"{recovered:.2f} s after FLUSHALL" if recovered is not None else "never (60 s)")
        + f" ({run.board_checks} reads, {run.board_errors} errors)"
    )
    say(f"server log: {server.log_path}")
    return {
        "users": args.users,
        "rate": args.rate,
        "seconds": args.seconds,
        "workers": args.workers,
        "flushed_at": round(run.flushed_at, 3),
        "before": before.as_json(),
        "after": after.as_json(),
        "first_second_after": first.as_json(),
        "longest_stall_seconds": {k: round(v, 3) for k, v in stalls.items()},
        "board_recovered_seconds": recovered,
        "board_reads": run.board_checks,
        "board_read_errors": run.board_errors,
    }


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("PERF_DATABASE_URL"))
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=200.0, help="writes per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the stream")
    parser.add_argument("--window", type=float, default=10.0, help="seconds either side")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    result = asyncio.run(main(args))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    cli()
