"""One ranking rule everywhere: Redis must list users exactly as PostgreSQL's ranking query."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from redis.asyncio import Redis

from app.core.board import snapshot_from_message
from app.core.ranking import micros, ranking_member, shared_ranks
from app.db.standings import top_rows
from app.redis.keys import Keys
from app.redis.scripts import TOP_N
from tests.conftest import services_of

FULL_ORDER_SQL = """
SELECT id::text FROM users WHERE score > 0 ORDER BY score DESC, reached_at ASC, id DESC
"""


def test_shared_ranks_skip_after_ties() -> None:
    rows = [("a", "a", 100), ("b", "b", 90), ("c", "c", 90), ("d", "d", 80)]
    assert [e.rank for e in shared_ranks(rows)] == [1, 2, 2, 4]
    assert [e.rank for e in shared_ranks([("a", "a", 5), ("b", "b", 5), ("c", "c", 5)])] == [
        1,
        1,
        1,
    ]
    assert shared_ranks([]) == []


def test_members_sort_earlier_reachers_first_then_larger_ids() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    low, high = "00000000-0000-0000-0000-000000000001", "ffffffff-0000-0000-0000-000000000000"
    earlier = ranking_member(high, t)
    later = ranking_member(low, t + timedelta(microseconds=1))
    # ZREVRANGE lists members of equal score in descending byte order.
    assert sorted([later, earlier], reverse=True) == [earlier, later]
    assert sorted([ranking_member(low, t), ranking_member(high, t)], reverse=True)[0].endswith(high)


def test_micros_is_exact() -> None:
    moment = datetime(2026, 11, 28, 12, 0, 0, 999_999, tzinfo=UTC)
    assert micros(moment) % 1_000_000 == 999_999


async def ranking_in_redis(redis: Redis, namespace: str) -> list[str]:
    members = await redis.zrevrange(Keys(namespace).ranking, 0, -1)
    return [m.decode().split(":", 1)[1] for m in members]


async def test_cache_order_equals_the_database_after_a_random_workload_with_ties(
    app, make_player, db: asyncpg.Connection, redis: Redis, namespace: str, settings
) -> None:
    services_of(app).settings = settings.with_overrides(rate_limit_per_minute=10_000)
    client = app.test_client()
    rng = random.Random(20261128)
    players = [await make_player() for _ in range(30)]
    # Few distinct point values, so many players tie on score.
    actions = ["quiz_a", "quiz_b", "quiz_c", "level_a", "level_b", "boss"]
    work = [(p, a) for p in players for a in rng.sample(actions, rng.randint(1, 4))]
    rng.shuffle(work)
    for start in range(0, len(work), 15):
        await asyncio.gather(
            *(
                client.post("/api/action/complete", json={"actionId": a}, headers=p.headers)
                for p, a in work[start : start + 15]
            )
        )

    database_order = [r["id"] for r in await db.fetch(FULL_ORDER_SQL)]
    assert await ranking_in_redis(redis, namespace) == database_order
    assert len(set(await db.fetchval("SELECT array_agg(score) FROM users"))) < len(players)

    board = (await (await client.get("/api/leaderboard")).get_json())["users"]
    expected = shared_ranks([(r["user_id"], r["username"], r["score"]) for r in await top_rows(db)])
    assert board == [e.as_json() for e in expected]


async def test_equal_scores_reached_at_the_same_instant_order_by_id(
    app, db: asyncpg.Connection, redis: Redis, namespace: str
) -> None:
    # Equal score and equal reached_at can only be forced in the database: the rule's last
    # tie-break (user id, descending) must agree between PostgreSQL and Redis.
    instant = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    ids = [str(uuid.uuid4()) for _ in range(12)]
    await db.executemany(
        "INSERT INTO users (id, username, score, reached_at, updated_at) VALUES ($1, $2, $3, $4, now())",
        [
            (uid, f"same_{i:02d}", 40 if i % 3 else 70, instant + timedelta(microseconds=i % 2))
            for i, uid in enumerate(ids)
        ],
    )
    await redis.delete(*Keys(namespace).leaderboard_keys())
    rebuilt = await services_of(app).reconcile.run_once()  # cold: a full rebuild
    assert rebuilt is not None and rebuilt.mode == "full"

    database_order = [r["id"] for r in await db.fetch(FULL_ORDER_SQL)]
    assert await ranking_in_redis(redis, namespace) == database_order
    message = await redis.get(Keys(namespace).message)
    users = snapshot_from_message(message).users
    assert [u["userId"] for u in users] == database_order[:TOP_N]
