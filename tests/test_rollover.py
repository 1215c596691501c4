"""Rollover at a period boundary, with a clock the test moves: two nodes share Redis and the
database; exactly one starts the new period (seeded from PostgreSQL, published once), and the
other node shows it through its subscription without any request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from redis.asyncio import Redis

from app.core.board import Boards
from app.core.board_reads import BoardCatalog
from app.db.accounts import ensure_user
from app.db.actions import upsert_actions
from app.db.completions import commit_completion
from app.redis.broker import Subscription
from app.redis.health import RedisHealth
from app.redis.keys import Keys
from app.redis.scripts import Scripts
from app.repair.rollover import Rollover
from tests.conftest import TEST_ACTIONS

# Sunday 3 January 2027, the last moments of ISO week 2026-W53; then Monday, 2027-W01. In the
# future, so the periods' keys (kept five minutes past their end) are there to look at.
SUNDAY_LATE = datetime(2027, 1, 3, 23, 59, 59, 500_000, tzinfo=UTC)
MONDAY_EARLY = datetime(2027, 1, 4, 0, 0, 0, 200_000, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as created:
        await upsert_actions(created, TEST_ACTIONS)  # type: ignore[arg-type]
        yield created


def node(name: str, redis: Redis, pool: asyncpg.Pool, keys: Keys, clock: Clock) -> Rollover:
    return Rollover(
        redis=redis,
        scripts=Scripts(redis, keys),
        keys=keys,
        pool=pool,
        catalog=BoardCatalog(),
        boards=Boards(),
        node_id=name,
        clock=clock,
    )


def weekly_period(rollover: Rollover) -> str | None:
    shown = rollover._boards.get("weekly").current
    return None if shown is None else shown.period


async def test_one_node_starts_the_new_period_and_the_other_sees_it_without_a_request(
    pool, redis: Redis, namespace: str, backing_servers
) -> None:
    keys = Keys(namespace)
    clock = Clock(SUNDAY_LATE)
    a, b = node("a", redis, pool, keys, clock), node("b", redis, pool, keys, clock)
    late, early = (await ensure_user(pool, "late_owl"), await ensure_user(pool, "early_bird"))
    await commit_completion(pool, late.user_id, "boss", SUNDAY_LATE - timedelta(milliseconds=100))

    await asyncio.gather(a.tick(), b.tick())
    assert len([p for p in a.started + b.started if p == ("weekly", "2026-W53")]) == 1
    # The node that lost the race takes the winner's message (here at its next tick).
    await asyncio.gather(a.tick(), b.tick())
    assert weekly_period(a) == weekly_period(b) == "2026-W53"

    # Node b listens on its one subscription and does not tick again.
    subscriber = Redis.from_url(backing_servers.redis_url)
    subscription = Subscription(subscriber, keys, b._boards, RedisHealth(0.2))
    subscription.start()
    await asyncio.wait_for(subscription.connected.wait(), 5)
    try:
        # A commit lands in the new week before any node noticed the boundary.
        await commit_completion(
            pool, early.user_id, "quiz_a", MONDAY_EARLY - timedelta(milliseconds=100)
        )
        clock.now = MONDAY_EARLY
        await a.tick()
        assert ("weekly", "2027-W01") in a.started
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.0
        while weekly_period(b) != "2027-W01":
            assert loop.time() < deadline, "node b did not see the new week within 2 s"
            await asyncio.sleep(0.02)
    finally:
        await subscription.stop()
        await subscriber.aclose()

    shown = b._boards.get("weekly").current
    assert shown is not None
    assert [(u["username"], u["score"]) for u in shown.users] == [("early_bird", 10)]
    # The week that ended stays as it was (the owl's points are not carried over).
    old = keys.board("weekly", "2026-W53")
    assert await redis.zcard(old.ranking) == 1
    # Another tick starts nothing twice.
    await asyncio.gather(a.tick(), b.tick())
    starts = [p for p in a.started + b.started if p == ("weekly", "2027-W01")]
    assert len(starts) == 1
    # The daily board rolled over too; the monthly one did not (January goes on).
    assert a._boards.get("daily").current.period == "2027-01-04"  # type: ignore[union-attr]
    assert a._boards.get("monthly").current.period == "2027-01"  # type: ignore[union-attr]


async def test_a_new_period_is_started_by_exactly_one_of_many_nodes(pool, redis, namespace) -> None:
    keys = Keys(namespace)
    clock = Clock(MONDAY_EARLY)
    nodes = [node(f"n{i}", redis, pool, keys, clock) for i in range(6)]
    await asyncio.gather(*(n.tick() for n in nodes))
    for board, period in (("weekly", "2027-W01"), ("daily", "2027-01-04"), ("monthly", "2027-01")):
        starters = [n for n in nodes if (board, period) in n.started]
        assert len(starters) == 1, (board, starters)
    # Every node shows the period, once its tick or a later one read the message.
    await asyncio.gather(*(n.tick() for n in nodes))
    assert {weekly_period(n) for n in nodes} == {"2027-W01"}
