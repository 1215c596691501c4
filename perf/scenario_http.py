"""The HTTP scenarios: read, write, limits, and their ceilings."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from app.core.board import Board, Boards
from app.core.ranking import iso, ranking_member
from app.db.completions import COMMIT_SQL, commit_completion
from app.db.standings import PgStandings
from app.http.services import keep_session
from app.redis.health import RedisHealth
from app.redis.keys import Keys
from app.redis.ranking_cache import LeaderboardCache
from app.redis.scripts import Scripts, Standing
from perf.http_load import (
    OpenLoopResult,
    close_connections,
    closed_loop_python,
    get_request,
    have_wrk,
    open_connections,
    open_loop,
    post_json,
    run_wrk,
)
from perf.stack import SMALL_ACTIONS, Dataset, PerfUser, Server
from perf.stats import Summary, summarize

BOARD = "/api/leaderboard"
COMPLETE = "/api/action/complete"


@dataclass
class Knobs:
    """How long and how hard; --quick shortens everything."""

    quick: bool
    step_seconds: float = 5.0
    closed_seconds: int = 10
    read_connections: int = 1000
    write_connections: int = 256
    read_rates: list[float] = field(default_factory=list)
    write_rates: list[float] = field(default_factory=list)

    @classmethod
    def make(cls, quick: bool) -> Knobs:
        if quick:
            return cls(
                True,
                3.0,
                5,
                1000,
                256,
                [1000, 2000, 3000, 4000, 5000],
                [250, 500, 750, 1000, 1500],
            )
        return cls(
            False,
            5.0,
            10,
            1000,
            256,
            [1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000],
            [250, 500, 750, 1000, 1250, 1500, 2000, 2500, 3000, 4000],
        )


def say(text: str) -> None:
    print(f"  {text}", flush=True)


async def open_step(
    port: int,
    connections: int,
    request: Callable[[int], bytes],
    rate: float,
    seconds: float,
    on_response: Callable[[int, int, bytes], None] | None = None,
) -> OpenLoopResult:
    """One open-loop step on fresh connections, so that requests an overloaded earlier step
    left in flight cannot hold this step's connections (they are dropped with theirs)."""
    conns = await open_connections(port, connections)
    try:
        return await open_loop(conns, request, rate, seconds, on_response=on_response)
    finally:
        close_connections(conns)


async def ramp(
    name: str,
    port: int,
    connections: int,
    request: Callable[[int], bytes],
    rates: list[float],
    seconds: float,
    p95_target: float,
    ok: Callable[[int], bool],
    offset: list[int] | None = None,
) -> tuple[list[Summary], float]:
    """Open-loop steps of rising rate; the highest rate whose p95 met the target (and had
    under 1 % errors). Stops after the second failing step."""
    steps: list[Summary] = []
    best, failures = 0.0, 0
    for rate in rates:
        start = offset[0] if offset else 0

        def shifted(i: int, start: int = start) -> bytes:
            return request(start + i)

        result = await open_step(port, connections, shifted, rate, seconds)
        if offset:
            offset[0] += max(1, int(rate * seconds))
        step = result.summary(f"{name} ramp", rate, ok)
        passed = step.p95 < p95_target and step.errors <= 0.01 * max(1, step.count)
        step.extra["meets_p95_target"] = passed
        steps.append(step)
        say(("PASS " if passed else "FAIL ") + step.line())
        if passed:
            best = max(best, rate)
        else:
            failures += 1
            if failures >= 2:
                break
        # Let the server finish what an overloaded step left behind before the next one.
        await asyncio.sleep(2.0 if passed else 6.0)
    return steps, best


# -- read -----------------------------------------------------------------------------------


async def read_scenario(
    server: Server, knobs: Knobs, workers: int, log_dir: Path
) -> dict[str, object]:
    out: dict[str, object] = {}
    say("read: closed loop, 1,000 connections, GET /api/leaderboard")
    out["closed"] = await closed(server, BOARD, knobs)
    say(out["closed"].line())  # type: ignore[attr-defined]
    say("read ceiling: the same stack answering a constant response (GET /healthz, Quart)")
    out["ceiling"] = await closed(server, "/healthz", knobs)
    say(out["ceiling"].line())  # type: ignore[attr-defined]
    say("read ceiling: a bare asyncio server answering the same bytes (no app)")
    body = urllib.request.urlopen(server.url + BOARD, timeout=10).read()
    template = log_dir / "board-body.json"
    template.write_bytes(body)
    argv = [sys.executable, "-m", "perf.fanout", "{port}", str(workers), str(template), "http"]
    bare = Server("bare-http", argv, dict(os.environ), log_dir).start(ready_path=None)
    try:
        out["bare"] = await closed(bare, BOARD, knobs)
    finally:
        bare.stop()
    say(out["bare"].line())  # type: ignore[attr-defined]
    say("read: open-loop ramp over 1,000 connections, p95 target 5 ms")
    request = get_request(BOARD)
    steps, best = await ramp(
        "read",
        server.port,
        knobs.read_connections,
        lambda i: request,
        knobs.read_rates,
        knobs.step_seconds,
        5.0,
        lambda s: s == 200,
    )
    out["ramp"] = steps
    out["max_rate_p95_under_5ms"] = best
    return out


async def closed(server: Server, path: str, knobs: Knobs) -> Summary:
    if have_wrk():
        loop = asyncio.get_running_loop()
        cpu0 = server.cpu_seconds()
        t0 = time.perf_counter()
        summary = await loop.run_in_executor(
            None, run_wrk, server.url + path, knobs.read_connections, knobs.closed_seconds
        )
        summary.extra["server_cpu_share"] = round(
            (server.cpu_seconds() - cpu0) / (time.perf_counter() - t0), 3
        )
    else:
        conns = await open_connections(server.port, knobs.read_connections)
        try:
            result = await closed_loop_python(conns, get_request(path), knobs.closed_seconds)
        finally:
            close_connections(conns)
        summary = result.summary("closed", 0, lambda s: s == 200)
        summary.target_rate = None
        summary.extra["loadgen"] = "python (wrk not installed)"
    summary.name = f"GET {path} closed loop"
    return summary


# -- write ----------------------------------------------------------------------------------


class Writes:
    """Score updates by many distinct users: request i is user i mod U completing a small
    action not yet done; a user comes round again only every U requests (rate limit: 10/min)."""

    def __init__(self, users: list[PerfUser]) -> None:
        self.users = users
        self.cache: dict[int, bytes] = {}

    def __call__(self, i: int) -> bytes:
        user = self.users[i % len(self.users)]
        action = (i // len(self.users)) % SMALL_ACTIONS
        return post_json(COMPLETE, f'{{"actionId":"perf_{action:03d}"}}'.encode(), user.token)


async def write_scenario(
    server: Server, data: Dataset, knobs: Knobs, writes: Writes, cursor: list[int]
) -> dict[str, object]:
    out: dict[str, object] = {}
    seconds = knobs.step_seconds * 2
    connections = knobs.write_connections
    for rate, key in ((100, "seed_100"), (1000, "goal_1000")):
        say(f"write: open loop, constant {rate}/s for {seconds:g} s")
        start = cursor[0]
        result = await open_step(
            server.port, connections, lambda i, s=start: writes(s + i), rate, seconds
        )
        cursor[0] += int(rate * seconds)
        out[key] = result.summary(f"write {rate}/s", rate, lambda s: s == 200)
        say(out[key].line())  # type: ignore[attr-defined]
        await asyncio.sleep(6.0)  # an overloaded step leaves work behind at the server
    say("write: open-loop ramp, p95 target 50 ms")
    steps, best = await ramp(
        "write",
        server.port,
        connections,
        writes,
        knobs.write_rates,
        knobs.step_seconds,
        50.0,
        lambda s: s == 200,
        offset=cursor,
    )
    out["ramp"] = steps
    out["max_rate_p95_under_50ms"] = best
    return out


async def write_ceilings(
    data: Dataset, users: list[PerfUser], seconds: float
) -> dict[str, Summary]:
    """Raw calls without HTTP, from one asyncio process, 32 at a time: the commit statement,
    the gate script, the apply script (all-time board), and all three in sequence as the
    service makes them (the gate on the user's key, the commit, and the apply of every board
    the commit counted on in one round trip: app/redis/ranking_cache.py)."""
    # Configured as the service's pool is (app/services.py), 20 connections.
    pool = await asyncpg.create_pool(data.url, min_size=20, max_size=20, reset=keep_session)
    redis = Redis.from_url(data.redis_url)
    keys = Keys(data.name)
    scripts = Scripts(redis, keys)
    await scripts.load()
    pairs = iter((u, a) for a in range(SMALL_ACTIONS) for u in users)
    out: dict[str, Summary] = {}

    async def commit() -> None:
        user, action = next(pairs)
        await pool.fetchrow(COMMIT_SQL, user.user_id, f"perf_{action:03d}", None, None, None)

    async def gate() -> None:
        await scripts.rate_limit(f"{data.name}:ceiling:{uuid.uuid4().hex[:6]}", 10, 60_000, "x")

    async def apply() -> None:
        user, action = next(pairs)
        now = time.time()
        from datetime import UTC, datetime

        moment = datetime.fromtimestamp(now, UTC)
        await scripts.apply_score(
            Standing(user.user_id, user.username, 1 + action, ranking_member(user.user_id, moment)),
            iso(moment),
        )

    # The service's own apply: every board the commit counted on, in one round trip.
    board = Board()
    cache = LeaderboardCache(
        redis=redis,
        scripts=scripts,
        keys=keys,
        standings=PgStandings(pool),
        board=board,
        health=RedisHealth(2.0),
        boards=Boards(board),
    )

    async def all_three() -> None:
        user, action = next(pairs)
        await scripts.rate_limit(keys.rate_limit(user.user_id), 10_000, 60_000, uuid.uuid4().hex)
        committed = await commit_completion(pool, user.user_id, f"perf_{action:03d}")
        if committed is not None:
            await cache.apply(committed)

    try:
        for name, call in (
            ("commit statement", commit),
            ("gate script", gate),
            ("apply script", apply),
            ("gate+commit+apply", all_three),
        ):
            out[name] = await hammer(name, call, seconds)
            say("ceiling " + out[name].line())
    finally:
        await pool.close()
        await redis.aclose()
    return out


async def hammer(
    name: str, call: Callable[[], object], seconds: float, parallel: int = 32
) -> Summary:
    latencies: list[float] = []
    errors = Counter[str]()
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                await call()  # type: ignore[misc]
            except Exception as error:  # a ceiling counts failures; it does not stop
                errors[type(error).__name__] += 1
                continue
            latencies.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(parallel)))
    summary = summarize(name, latencies, time.perf_counter() - t0, sum(errors.values()))
    summary.extra = {"parallel": parallel, "errors": dict(errors)}
    return summary


# -- limits ---------------------------------------------------------------------------------


async def limits_scenario(
    server: Server, users: list[PerfUser], rate: float = 400
) -> dict[str, object]:
    """Each user sends 15 rapid requests (15 different actions, back to back): exactly 10 must
    pass. The overall rate stays below what the write path sustains: an overloaded node takes
    Redis replies slower than REDIS_TIMEOUT_SECONDS for an outage and falls back to its
    per-process limiter, which is the documented outage behaviour, not the one under test."""
    say(f"limits: {len(users)} users x 15 rapid requests")
    accepted: Counter[int] = Counter()
    refused: Counter[int] = Counter()

    def request(i: int) -> bytes:
        user = users[i // 15]
        return post_json(COMPLETE, f'{{"actionId":"perf_{i % 15:03d}"}}'.encode(), user.token)

    def on_response(i: int, status: int, body: bytes) -> None:
        if status == 200:
            accepted[i // 15] += 1
        elif status == 429:
            refused[i // 15] += 1

    total = len(users) * 15
    result = await open_step(server.port, 200, request, rate, total / rate, on_response=on_response)
    exact = sum(1 for u in range(len(users)) if accepted[u] == 10 and refused[u] == 5)
    outcomes = Counter(f"{accepted[u]} accepted, {refused[u]} refused" for u in range(len(users)))
    summary = result.summary("limits", rate, lambda s: s in (200, 429))
    summary.extra.update(
        users=len(users),
        users_exact=exact,
        accepted=sum(accepted.values()),
        refused_429=sum(refused.values()),
        outcomes=dict(outcomes),
    )
    say(
        f"limits: {exact}/{len(users)} users got exactly 10 accepted and 5 refused; "
        + summary.line()
    )
    return {"burst": summary, "exact": exact == len(users)}
