"""The reconciler covers every board's current period: drift on a board is found and repaired
incrementally, a board whose period Redis lost is rebuilt in full (published under a new
epoch), and past periods are left to PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest
from redis.asyncio import Redis

from app.core.board_reads import BoardCatalog
from app.core.boards import BUILT_IN_BOARDS
from app.core.ranking import ranking_member
from app.db.accounts import ensure_user
from app.db.actions import upsert_actions
from app.db.completions import commit_completion
from app.redis.keys import Keys
from app.redis.lock import ReconcileLock
from app.redis.scripts import Scripts
from app.repair.reconcile import Reconciler
from tests.conftest import TEST_ACTIONS


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as created:
        await upsert_actions(created, TEST_ACTIONS)  # type: ignore[arg-type]
        yield created


def reconciler(pool: asyncpg.Pool, redis: Redis, namespace: str) -> Reconciler:
    keys = Keys(namespace)
    scripts = Scripts(redis, keys)
    lock = ReconcileLock(redis, scripts, keys)
    return Reconciler(
        pool=pool, redis=redis, keys=keys, scripts=scripts, lock=lock, catalog=BoardCatalog()
    )


async def run_pass(node: Reconciler, **kwargs: bool):  # type: ignore[no-untyped-def]
    async with node._lock.held() as got:
        assert got
        return await node.run(**kwargs)


def current_week() -> str:
    period = next(b for b in BUILT_IN_BOARDS if b.id == "weekly").current_period(datetime.now(UTC))
    assert period is not None
    return period.id


async def weekly_in_redis(redis: Redis, namespace: str) -> dict[str, float]:
    held = await redis.zrange(
        Keys(namespace).board("weekly", current_week()).ranking, 0, -1, withscores=True
    )
    return {m.decode(): s for m, s in held}


async def weekly_in_db(pool: asyncpg.Pool) -> dict[str, float]:
    rows = await pool.fetch(
        "SELECT user_id::text, score, reached_at FROM board_scores WHERE board_id = 'weekly' AND period = $1",
        current_week(),
    )
    return {ranking_member(r["user_id"], r["reached_at"]): float(r["score"]) for r in rows}


async def test_every_current_period_is_rebuilt_then_kept_in_line(pool, redis, namespace) -> None:
    ada, bob = await ensure_user(pool, "ada"), await ensure_user(pool, "bob")
    # Committed, never applied (a node died in between): Redis knows nothing of them.
    await commit_completion(pool, ada.user_id, "boss")
    await commit_completion(pool, bob.user_id, "quiz_a")
    # Last week's points stay in PostgreSQL only.
    await commit_completion(pool, bob.user_id, "level_a", datetime.now(UTC) - timedelta(days=7))
    node = reconciler(pool, redis, namespace)

    first = await run_pass(node)
    passes = {(sub.board, sub.period): sub for sub in first.boards}
    assert set(passes) == {
        (b.id, p.id)
        for b in BUILT_IN_BOARDS
        if not b.is_all_time
        for p in [b.current_period(datetime.now(UTC))]
        if p is not None
    }
    weekly = passes[("weekly", current_week())]
    assert (weekly.mode, weekly.reason) == ("full", "the ranking was cold (Redis lost its data)")
    assert weekly.published and weekly.scanned == 2
    assert await weekly_in_redis(redis, namespace) == await weekly_in_db(pool)
    message = orjson.loads(await redis.get(Keys(namespace).board("weekly", current_week()).message))
    assert (message["board"], message["period"]) == ("weekly", current_week())
    assert [u["username"] for u in message["data"]["users"]] == ["ada", "bob"]
    assert not await redis.exists(Keys(namespace).board("weekly", "2020-W01").ranking)

    # Drift on a warm board: a commit that was not applied, and a stray entry.
    carol = await ensure_user(pool, "carol")
    await commit_completion(pool, carol.user_id, "level_b")
    weekly_keys = Keys(namespace).board("weekly", current_week())
    await redis.zadd(weekly_keys.ranking, {"0000000000000001:not-a-user": 5})
    second = await run_pass(node)
    weekly = next(sub for sub in second.boards if sub.board == "weekly")
    assert weekly.mode == "incremental" and weekly.drift.missing == 1
    assert "board weekly" in second.summary()
    stray_left = await weekly_in_redis(redis, namespace)
    assert {k: v for k, v in stray_left.items() if "not-a-user" not in k} == await weekly_in_db(
        pool
    )

    # A full pass also drops the stray entry.
    await run_pass(node, full=True)
    assert await weekly_in_redis(redis, namespace) == await weekly_in_db(pool)
