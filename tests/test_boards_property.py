"""The boards' invariants under a random concurrent workload: across periods (the next week and
month boundaries, to the microsecond on either side), action tags, and a tournament's end.

After the workload, for every board and period: PostgreSQL equals the history (each user's
score is the sum of their matching rows in that window); Redis holds exactly PostgreSQL's
ranking (same members, same order); and for the current periods the API's pages, around-a-user
reads and top 10 equal PostgreSQL's ranking with its shared ranks. Commits take the
production path (the one commit statement, then the one-round-trip apply); some at explicit
instants, the rest at the database's clock.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from redis.asyncio import Redis

from app.core.boards import new_board
from app.core.catalog import Action
from app.core.ranking import ranking_member
from app.db import boards as db_boards
from app.db.accounts import ensure_user
from app.db.actions import upsert_actions
from app.db.completions import commit_completion
from app.redis.keys import Keys
from tests.conftest import services_of
from tests.test_boards_db import check_invariants, reference

ACTIONS = [
    *[Action(f"pq_{i}", f"Quiz {i}", 5 + i, tags=("quiz",)) for i in range(8)],
    *[Action(f"pl_{i}", f"Level {i}", 30 + i, tags=("level",)) for i in range(8)],
    *[Action(f"px_{i}", f"Combo {i}", 50 + i, tags=("quiz", "level")) for i in range(4)],
    Action("p_daily", "Daily", 3, repeat="daily"),
]


def next_monday(now: datetime) -> datetime:
    day = (now + timedelta(days=7 - now.weekday())).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def next_month(now: datetime) -> datetime:
    return datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)


async def ordered_rows(pool: asyncpg.Pool, board: str, period: str) -> list[asyncpg.Record]:
    since = datetime(1970, 1, 1, tzinfo=UTC)
    rows = await pool.fetch(db_boards.STANDINGS_SQL.of(board), board, period, since)
    return sorted(rows, key=lambda r: reference_key(r))


def reference_key(row: asyncpg.Record) -> tuple[object, ...]:
    return (-row["score"], row["reached_at"], tuple(-b for b in uuid.UUID(row["user_id"]).bytes))


async def wait_until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("seed", [11, 12, 13])
async def test_redis_and_the_api_equal_the_database_for_every_board_and_period(
    app, client, db: asyncpg.Connection, redis: Redis, namespace: str, database_url: str, seed: int
) -> None:
    rng = random.Random(seed)
    svc = services_of(app)
    now = datetime.now(UTC)
    monday, month = next_monday(now), next_month(now)
    await upsert_actions(db, ACTIONS)
    await db_boards.insert_board(db, new_board("quiz-week", "Quiz week", "week", action_tag="quiz"))
    # A tournament for level actions that ends at the next week boundary.
    await db_boards.insert_board(
        db,
        new_board(
            "cup",
            "Cup",
            "tournament",
            action_tag="level",
            starts_at=monday - timedelta(hours=2),
            ends_at=monday,
        ),
    )
    await db_boards.refresh_boards(svc.board_catalog, db)
    await svc.reconcile.first_attempt(10)  # the all-time ranking is warm
    users = [(await ensure_user(db, f"w{seed}_{i:02d}")) for i in range(25)]

    def instant() -> datetime | None:
        roll = rng.random()
        if roll < 0.4:
            return None  # the database's clock: now
        anchor = monday if roll < 0.8 else month
        return anchor + timedelta(microseconds=rng.randint(-1_500_000, 1_500_000))

    async with asyncpg.create_pool(database_url, min_size=2, max_size=8) as pool:

        async def one(user_id: str, username: str, action_id: str, at: datetime | None) -> None:
            committed = await commit_completion(pool, user_id, action_id, at)
            if committed is not None:
                await svc.leaderboard.apply(committed)

        jobs = [
            (u.user_id, u.username, rng.choice(ACTIONS).id, instant())
            for u in (rng.choice(users) for _ in range(220))
        ]
        await asyncio.gather(*(one(*job) for job in jobs))

        # 1. PostgreSQL: every board and period equals its history.
        assert await check_invariants(pool) >= 10

        # 2. Redis holds exactly PostgreSQL's ranking, for every board and period.
        keys = Keys(namespace)
        pairs = [
            (r["board_id"], r["period"])
            for r in await pool.fetch("SELECT DISTINCT board_id, period FROM board_scores")
        ] + [("all-time", "all")]
        assert {b for b, _ in pairs} >= {"daily", "weekly", "monthly", "quiz-week", "cup"}
        for board, period in pairs:
            rows = await ordered_rows(pool, board, period)
            expected = [(ranking_member(r["user_id"], r["reached_at"]), r["score"]) for r in rows]
            held = await redis.zrevrange(keys.board(board, period).ranking, 0, -1, withscores=True)
            assert [(m.decode(), int(s)) for m, s in held] == expected, (board, period)

        # 3. The API, for each board's current period: pages, around, and the top 10.
        for board_obj, period_obj in svc.board_catalog.open_at(datetime.now(UTC)):
            board, period = board_obj.id, period_obj.id
            rows = await ordered_rows(pool, board, period)
            truth = reference(rows)
            walked, cursor = [], None
            while True:
                query = f"/api/leaderboard?board={board}&limit=7" + (
                    f"&cursor={cursor}" if cursor else ""
                )
                page = await (await client.get(query)).get_json()
                assert page["total"] == len(truth), board
                walked += [(u["userId"], u["score"], u["rank"]) for u in page["users"]]
                cursor = page["nextCursor"]
                if cursor is None:
                    break
            assert walked == truth, board
            for position in rng.sample(range(len(truth)), min(3, len(truth))):
                around = await (
                    await client.get(
                        f"/api/leaderboard?board={board}&around={truth[position][0]}&radius=2"
                    )
                ).get_json()
                low = max(0, position - 2)
                assert [(u["userId"], u["score"], u["rank"]) for u in around["users"]] == truth[
                    low : position + 3
                ]

            async def top_matches(board: str = board, truth: list = truth) -> bool:  # type: ignore[type-arg]
                body = await (await client.get(f"/api/leaderboard?board={board}")).get_json()
                return [(u["userId"], u["score"], u["rank"]) for u in body["users"]] == truth[:10]

            await wait_until(top_matches)
