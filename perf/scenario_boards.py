"""The boards scenario: what the four built-in boards cost a write, and what a page 100 and an
around=me read cost, at 1,000 reads/s.

- **writes**: the same workload twice, with the four built-in boards counting and with only
  the all-time board (daily, weekly and monthly ended for the measurement, then reopened):
  raw ceilings without HTTP (the commit statement; gate + commit + apply), and
  ``POST /api/action/complete`` in an open loop at constant rates.
- **reads**: 12,000 players ranked this week; ``GET /api/leaderboard?board=weekly&limit=100
  &cursor=<page 99's>`` (rows 9,901-10,000) and ``...&around=me&radius=5`` (a different
  signed-in player each time), each in an open loop at 500/s and at 1,000/s.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from app.core.boards import BUILT_IN_BOARDS, Cursor, RowKey
from app.core.ranking import iso, ranking_member
from app.db.completions import COMMIT_SQL
from app.http.services import keep_session
from app.redis.keys import Keys
from app.redis.ranking_cache import expire_at_ms
from app.redis.scripts import BoardApply, Scripts, Standing
from perf.http_load import HOST
from perf.scenario_http import Knobs, Writes, hammer, open_step, say
from perf.stack import SMALL_ACTIONS, Dataset, PerfUser, leaderboard_server, service_env
from perf.stats import Summary

OTHER_BOARDS = ("daily", "weekly", "monthly")
RANKED = 12_000
BOARD_USERS = 9_000 + 2_000 + RANKED  # HTTP writers, ceiling writers, the ranked week
READ_RATES = (500.0, 1000.0)  # the goal is 1,000/s; 500/s shows the cost below saturation
WRITE_RATES = (100.0, 250.0)  # the spec's 100/s, and more


def get_with_token(path: str, token: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()


async def set_boards_open(url: str, open_: bool) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "UPDATE boards SET ended_at = CASE WHEN $2 THEN NULL ELSE now() END "
            "WHERE id = ANY($1::text[])",
            list(OTHER_BOARDS),
            open_,
        )
    finally:
        await conn.close()


async def write_ceilings(
    data: Dataset, users: list[PerfUser], seconds: float
) -> dict[str, Summary]:
    """The commit statement, and gate + commit + apply (every board of the commit in one
    round trip), from one asyncio process, 32 in flight, no HTTP."""
    pool = await asyncpg.create_pool(data.url, min_size=20, max_size=20, reset=keep_session)
    redis = Redis.from_url(data.redis_url)
    keys = Keys(data.name)
    scripts = Scripts(redis, keys)
    await scripts.load()
    pairs = iter([(u, a) for a in range(SMALL_ACTIONS) for u in users])
    out: dict[str, Summary] = {}

    async def commit() -> None:
        user, action = next(pairs)
        await pool.fetchrow(COMMIT_SQL, user.user_id, f"perf_{action:03d}", None, None, None)

    async def all_three() -> None:
        await scripts.rate_limit(f"{data.name}:ceiling:{uuid.uuid4().hex[:6]}", 10, 60_000, "x")
        user, action = next(pairs)
        row = await pool.fetchrow(COMMIT_SQL, user.user_id, f"perf_{action:03d}", None, None, None)
        if row is None:
            return
        member = ranking_member(user.user_id, row["reached_at"])
        applies = [
            BoardApply(keys.all_time, Standing(user.user_id, user.username, row["score"], member))
        ]
        for board, period, score, ends in zip(
            row["board_ids"],
            row["board_periods"],
            row["board_scores"],
            row["board_ends"],
            strict=True,
        ):
            applies.append(
                BoardApply(
                    keys.board(board, period),
                    Standing(user.user_id, user.username, score, member),
                    expire_at_ms(ends),
                )
            )
        await scripts.apply_scores(applies, iso(row["reached_at"]))

    try:
        for name, call in (("commit statement", commit), ("gate+commit+apply", all_three)):
            out[name] = await hammer(name, call, seconds)
            say("ceiling " + out[name].line())
    finally:
        await pool.close()
        await redis.aclose()
    return out


async def seed_ranked(data: Dataset, users: list[PerfUser]) -> str:
    """Give ``users`` points this week (and all time): scores 1..500, many ties. Returns the
    weekly period. Written to PostgreSQL; the service's rollover loads the period into Redis."""
    weekly = next(b for b in BUILT_IN_BOARDS if b.id == "weekly")
    period = weekly.current_period(datetime.now(UTC))
    assert period is not None
    conn = await asyncpg.connect(data.url)
    try:
        ids = [u.user_id for u in users]
        await conn.execute(
            """
            WITH given AS (
                SELECT id::uuid AS id, 1 + (ord % 500) AS score,
                       clock_timestamp() - make_interval(secs => ord) AS reached_at
                  FROM unnest($1::text[]) WITH ORDINALITY AS t (id, ord)
            ), scored AS (
                UPDATE users u SET score = given.score, reached_at = given.reached_at,
                                   updated_at = clock_timestamp()
                  FROM given WHERE u.id = given.id
                RETURNING u.id, u.score, u.reached_at
            )
            INSERT INTO board_scores (board_id, period, user_id, score, reached_at, updated_at)
            SELECT 'weekly', $2, id, score, reached_at, clock_timestamp() FROM scored
            """,
            ids,
            period.id,
        )
    finally:
        await conn.close()
    return period.id


async def reconcile(data: Dataset) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli.main",
        "reconcile",
        "--full",
        env=service_env(data),
        stdout=asyncio.subprocess.DEVNULL,
    )
    if await asyncio.wait_for(process.wait(), 300) != 0:
        raise RuntimeError("leaderboard reconcile --full failed")


async def wait_loaded(data: Dataset, period: str, expected: int, timeout: float = 120.0) -> None:
    redis = Redis.from_url(data.redis_url)
    keys = Keys(data.name).board("weekly", period)
    try:
        deadline = time.monotonic() + timeout
        while await redis.zcard(keys.ranking) < expected or not await redis.exists(keys.version):
            if time.monotonic() > deadline:
                raise RuntimeError("the weekly board was not loaded into Redis in time")
            await asyncio.sleep(0.5)
    finally:
        await redis.aclose()


async def page_100_cursor(data: Dataset, period: str) -> str:
    """The nextCursor that page 99 (limit 100) gives: the 9,900th row's place."""
    conn = await asyncpg.connect(data.url)
    try:
        row = await conn.fetchrow(
            "SELECT user_id::text, score, reached_at FROM board_scores"
            " WHERE board_id = 'weekly' AND period = $1"
            " ORDER BY score DESC, reached_at ASC, user_id DESC OFFSET 9899 LIMIT 1",
            period,
        )
    finally:
        await conn.close()
    return Cursor(
        "weekly", period, RowKey.of(row["score"], row["reached_at"], row["user_id"])
    ).encode()


async def boards_scenario(
    data: Dataset,
    workers: int,
    write_users: list[PerfUser],
    ceiling_users: list[PerfUser],
    ranked_users: list[PerfUser],
    knobs: Knobs,
    log_dir: Path,
) -> dict[str, object]:
    out: dict[str, object] = {}
    seconds = knobs.step_seconds * 2
    half = len(ceiling_users) // 2
    writes = Writes(write_users)
    cursor = [0]
    # The same service for every measurement: boards are opened and ended in the database,
    # which the commit statement reads each time.
    server = leaderboard_server(data, workers, log_dir, name="boards").start()
    try:
        for label, open_ in (("one board", False), ("four boards", True)):
            await set_boards_open(data.url, open_)
            say(f"boards: writes with {label}")
            ceilings = await write_ceilings(
                data, ceiling_users[:half] if open_ else ceiling_users[half:], knobs.step_seconds
            )
            steps: dict[str, Summary] = {}
            for rate in WRITE_RATES:
                start = cursor[0]
                result = await open_step(
                    server.port, 256, lambda i, s=start: writes(s + i), rate, seconds
                )
                cursor[0] += int(rate * seconds)
                steps[f"{rate:.0f}"] = result.summary(
                    f"write {rate:.0f}/s, {label}", rate, lambda s: s == 200
                )
                say(steps[f"{rate:.0f}"].line())
                await asyncio.sleep(6.0)
            out[label] = {"ceilings": ceilings, "http": steps}

        say(f"boards: {RANKED:,} players ranked this week; reads at {READ_RATES} per s")
        period = await seed_ranked(data, ranked_users)
        # Written straight to PostgreSQL: the reconciler loads them, as it would any repair.
        await reconcile(data)
        await wait_loaded(data, period, RANKED)
        page_path = (
            f"/api/leaderboard?board=weekly&limit=100&cursor={await page_100_cursor(data, period)}"
        )
        page_request = f"GET {page_path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
        around = "/api/leaderboard?board=weekly&around=me&radius=5"
        requests = {
            "page 100 (limit=100)": lambda i: page_request,
            "around=me (radius 5)": lambda i: get_with_token(
                around, ranked_users[i % len(ranked_users)].token
            ),
        }
        for name, request in requests.items():
            for rate in READ_RATES:
                result = await open_step(server.port, 200, request, rate, seconds)
                key = name if rate == READ_RATES[-1] else f"{name} @ {rate:.0f}/s"
                out[key] = result.summary(f"boards read {name}", rate, lambda s: s == 200)
                say(out[key].line())  # type: ignore[attr-defined]
                await asyncio.sleep(6.0)
    finally:
        server.stop()
    return out
