"""Lua contracts for corrections: a lower score, no score at all (out of the ranking, with a
tombstone a late apply cannot undo), the reconciler around tombstones, and remove_user."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
import pytest
from redis.asyncio import Redis

from app.redis.keys import Keys
from app.redis.scripts import Scripts
from tests.test_scripts import T0, standing


@pytest.fixture
async def warm(redis: Redis, namespace: str) -> Scripts:
    scripts = Scripts(redis, Keys(namespace))
    await scripts.load()
    await scripts.publish_top10("2026-11-28T12:00:00.000Z", new_epoch=True)
    return scripts


async def ranking(redis: Redis, keys: Keys) -> dict[str, int]:
    rows = await redis.zrange(keys.all_time.ranking, 0, -1, withscores=True)
    return {m.decode().partition(":")[2]: int(s) for m, s in rows}


async def top_users(redis: Redis, keys: Keys) -> list[tuple[str, int]]:
    message = orjson.loads(await redis.get(keys.message))
    return [(u["userId"], u["score"]) for u in message["data"]["users"]]


async def test_a_lower_score_moves_the_user_down_and_republishes(warm, redis, namespace) -> None:  # type: ignore[no-untyped-def]
    keys = Keys(namespace)
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    await warm.apply_score(standing(alice, 100, T0), "t1")
    await warm.apply_score(standing(bob, 50, T0 + timedelta(seconds=1)), "t2")
    assert [u for u, _ in await top_users(redis, keys)] == [alice, bob]
    lowered = await warm.apply_score(standing(alice, 20, T0 + timedelta(seconds=2)), "t3")
    assert lowered.applied and lowered.top_changed and lowered.rank == 2
    assert await top_users(redis, keys) == [(bob, 50), (alice, 20)]


async def test_no_points_takes_the_user_out_and_a_late_apply_cannot_bring_them_back(
    warm, redis, namespace
) -> None:  # type: ignore[no-untyped-def]
    keys = Keys(namespace)
    alice = str(uuid.uuid4())
    await warm.apply_score(standing(alice, 100, T0), "t1")
    gone = await warm.apply_score(standing(alice, 0, T0 + timedelta(seconds=2)), "t2")
    assert gone.applied and gone.rank == 0 and gone.previous_rank == 1 and gone.top_changed
    assert await ranking(redis, keys) == {} and await top_users(redis, keys) == []
    # A commit from before the removal, applied late, is older than the tombstone.
    late = await warm.apply_score(standing(alice, 150, T0 + timedelta(seconds=1)), "t3")
    assert not late.applied and late.rank == 0
    assert await ranking(redis, keys) == {}
    # A later commit places the user again.
    again = await warm.apply_score(standing(alice, 10, T0 + timedelta(seconds=3)), "t4")
    assert again.applied and again.rank == 1
    assert await ranking(redis, keys) == {alice: 10}


async def test_the_reconciler_respects_a_newer_tombstone(warm, redis, namespace) -> None:  # type: ignore[no-untyped-def]
    keys = Keys(namespace)
    alice = str(uuid.uuid4())
    await warm.apply_score(standing(alice, 0, T0 + timedelta(seconds=2)), "t")
    # The batch was read before the removal committed: the tombstone is newer.
    drift = await warm.reconcile_batch("fix", [standing(alice, 100, T0)], 60)
    assert drift.newer == 1 and drift.missing == 0
    assert await ranking(redis, keys) == {}
    # An unranked row over a tombstone is no drift.
    drift = await warm.reconcile_batch("fix", [standing(alice, 0, T0 + timedelta(seconds=2))], 60)
    assert (drift.missing, drift.wrong, drift.extra) == (0, 0, 0)
    # A newer committed standing does go in.
    drift = await warm.reconcile_batch("fix", [standing(alice, 5, T0 + timedelta(seconds=3))], 60)
    assert drift.missing == 1 and await ranking(redis, keys) == {alice: 5}


async def test_remove_user_takes_them_out_and_publishes(warm, redis, namespace) -> None:  # type: ignore[no-untyped-def]
    keys = Keys(namespace)
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    await warm.apply_score(standing(alice, 100, T0), "t1")
    await warm.apply_score(standing(bob, 50, T0), "t2")
    removed = await warm.remove_user(alice, "t3", keys.all_time)
    assert removed.removed and removed.top_changed and removed.message
    assert await top_users(redis, keys) == [(bob, 50)]
    assert await redis.hget(keys.all_time.members, alice) is None
    again = await warm.remove_user(alice, "t4", keys.all_time)
    assert not again.removed and not again.top_changed and again.message == b""
    # Without a member left, the user's standing (an unban) goes straight back in.
    back = await warm.apply_score(standing(alice, 100, T0), "t5")
    assert back.applied and back.rank == 1


async def test_remove_user_leaves_a_missing_board_missing(warm, redis, namespace) -> None:  # type: ignore[no-untyped-def]
    board = Keys(namespace).board("weekly", "2026-W48")
    result = await warm.remove_user(str(uuid.uuid4()), "t", board)
    assert not result.removed
    assert not any([await redis.exists(k) for k in board.leaderboard_keys()])
