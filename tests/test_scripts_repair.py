"""Contract tests, through the facade, of the scripts behind the reconciler, the reconcile lock
and the live registry (the leaderboard's and the rate limit's: tests/test_scripts.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from redis.asyncio import Redis

from app.core.ranking import ranking_member
from app.redis.keys import Keys
from app.redis.scripts import BatchDrift, Scripts, Standing

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def standing(user_id: str, score: int, at: datetime, name: str | None = None) -> Standing:
    return Standing(user_id, name or f"user-{user_id[:4]}", score, ranking_member(user_id, at))


@pytest.fixture
async def scripts(redis: Redis, namespace: str) -> Scripts:
    loaded = Scripts(redis, Keys(namespace))
    await loaded.load()
    await loaded.publish_top10("2026-11-28T12:00:00.000Z", new_epoch=True)  # warm
    return loaded


async def ranking(redis: Redis, key: str) -> dict[str, float]:
    return {m.decode(): s for m, s in await redis.zrange(key, 0, -1, withscores=True)}


# -- reconcile_batch ---------------------------------------------------------------------------


async def test_a_check_counts_each_kind_of_drift_and_changes_nothing(
    scripts, redis, namespace
) -> None:
    keys = Keys(namespace)
    right, wrong, missing, stray, newer = (str(uuid.uuid4()) for _ in range(5))
    for user, score in ((right, 10), (wrong, 20), (stray, 30)):
        await scripts.apply_score(standing(user, score, T0, user), "t")
    await scripts.apply_score(standing(newer, 40, T0 + timedelta(seconds=9), newer), "t")
    await redis.zadd(keys.ranking, {ranking_member(wrong, T0): 999})  # a tampered score
    before = await ranking(redis, keys.ranking)

    drift = await scripts.reconcile_batch(
        "check",
        [
            standing(right, 10, T0, right),
            standing(wrong, 20, T0, wrong),
            standing(missing, 50, T0, missing),
            standing(stray, 0, T0, stray),  # unranked in the database
            standing(newer, 35, T0 + timedelta(seconds=5), newer),  # read before its update
        ],
        60,
    )

    assert drift == BatchDrift(missing=1, wrong=1, extra=1, accounted=4, newer=1)
    assert await ranking(redis, keys.ranking) == before


async def test_a_fix_repairs_the_live_keys_exactly_as_an_apply_would(
    scripts, redis, namespace
) -> None:
    keys = Keys(namespace)
    wrong, missing, stray, newer = (str(uuid.uuid4()) for _ in range(4))
    await scripts.apply_score(standing(wrong, 20, T0, "old name"), "t")
    await scripts.apply_score(standing(stray, 30, T0), "t")
    await scripts.apply_score(standing(newer, 40, T0 + timedelta(seconds=9)), "t")

    drift = await scripts.reconcile_batch(
        "fix",
        [
            standing(wrong, 25, T0 + timedelta(seconds=1), "new name"),
            standing(missing, 50, T0),
            standing(stray, 0, T0),
            standing(newer, 35, T0 + timedelta(seconds=5)),
        ],
        60,
    )

    assert (drift.missing, drift.wrong, drift.extra, drift.newer) == (1, 1, 1, 1)
    assert await ranking(redis, keys.ranking) == {
        ranking_member(wrong, T0 + timedelta(seconds=1)): 25.0,
        ranking_member(missing, T0): 50.0,
        ranking_member(newer, T0 + timedelta(seconds=9)): 40.0,  # never undone
    }
    assert await redis.hget(keys.names, wrong) == b"new name"
    assert await redis.hget(keys.members, stray) is None
    again = await scripts.reconcile_batch("fix", [standing(missing, 50, T0)], 60)
    assert again == BatchDrift(missing=0, wrong=0, extra=0, accounted=1, newer=0)


async def test_a_stage_fills_the_rebuild_keys_with_an_expiry_and_leaves_the_live_ones(
    scripts, redis, namespace
) -> None:
    keys = Keys(namespace)
    staged_ranking, staged_members, staged_names = keys.rebuild_keys()
    live_user, new_user = str(uuid.uuid4()), str(uuid.uuid4())
    await scripts.apply_score(standing(live_user, 10, T0), "t")
    live_before = await ranking(redis, keys.ranking)

    drift = await scripts.reconcile_batch(
        "stage", [standing(live_user, 10, T0), standing(new_user, 70, T0, "nu")], 60
    )

    assert (drift.missing, drift.accounted) == (1, 1)
    assert await ranking(redis, keys.ranking) == live_before
    assert await ranking(redis, staged_ranking) == {
        ranking_member(live_user, T0): 10.0,
        ranking_member(new_user, T0): 70.0,
    }
    assert await redis.hget(staged_members, new_user) == ranking_member(new_user, T0).encode()
    assert await redis.hget(staged_names, new_user) == b"nu"
    for key in keys.rebuild_keys():
        assert 0 < await redis.ttl(key) <= 60


async def test_a_batch_carries_any_username_exactly(scripts, redis, namespace) -> None:
    keys = Keys(namespace)
    name = 'qu"ote \\ back, tab\t, é, 漢字, 😀'
    applied, fixed = str(uuid.uuid4()), str(uuid.uuid4())
    await scripts.apply_score(standing(applied, 10, T0, name), "t")

    drift = await scripts.reconcile_batch(
        "fix", [standing(applied, 10, T0, name), standing(fixed, 20, T0, name)], 60
    )

    assert (drift.missing, drift.wrong) == (1, 0)  # the applied name compares equal
    assert await redis.hget(keys.names, fixed) == name.encode()
    assert await redis.hget(keys.names, applied) == name.encode()


# -- reconcile_swap ----------------------------------------------------------------------------


async def test_a_swap_puts_the_staged_ranking_live_under_a_new_epoch(
    scripts, redis, namespace
) -> None:
    keys = Keys(namespace)
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    await scripts.apply_score(standing(old, 10, T0, "old"), "t")
    epoch_before = orjson.loads(await redis.get(keys.message))["epoch"]
    await scripts.reconcile_batch("stage", [standing(new, 70, T0, "new")], 60)
    await redis.set(keys.reconcile_lock, "mine")

    swapped = await scripts.reconcile_swap("mine", "2026-11-28T13:00:00.000Z")

    assert swapped is not None and swapped.replaced == 1
    assert await ranking(redis, keys.ranking) == {ranking_member(new, T0): 70.0}
    assert await redis.hget(keys.members, old) is None
    for key in (keys.ranking, keys.members, keys.names):
        assert await redis.ttl(key) == -1  # the staging expiry did not carry over
    assert not any([await redis.exists(key) for key in keys.rebuild_keys()])
    message = orjson.loads(await redis.get(keys.message))
    assert int(message["epoch"]) > int(epoch_before)
    assert message["version"] == swapped.version
    assert message["data"]["users"] == [{"userId": new, "username": "new", "score": 70, "rank": 1}]


async def test_a_swap_of_nothing_staged_empties_the_ranking(scripts, redis, namespace) -> None:
    keys = Keys(namespace)
    await scripts.apply_score(standing(str(uuid.uuid4()), 10, T0), "t")
    await redis.set(keys.reconcile_lock, "mine")

    swapped = await scripts.reconcile_swap("mine", "t")

    assert swapped is not None and swapped.replaced == 1
    assert not await redis.exists(keys.ranking, keys.members, keys.names)
    assert orjson.loads(await redis.get(keys.message))["data"]["users"] == []


async def test_a_swap_without_the_lock_touches_nothing(scripts, redis, namespace) -> None:
    keys = Keys(namespace)
    await scripts.apply_score(standing(str(uuid.uuid4()), 10, T0), "t")
    await scripts.reconcile_batch("stage", [standing(str(uuid.uuid4()), 70, T0)], 60)
    await redis.set(keys.reconcile_lock, "someone else")
    live_before = await ranking(redis, keys.ranking)
    message_before = await redis.get(keys.message)

    assert await scripts.reconcile_swap("mine", "t") is None

    assert await ranking(redis, keys.ranking) == live_before
    assert await redis.get(keys.message) == message_before
    assert await redis.exists(keys.rebuild_keys()[0])


# -- lock_extend, lock_release -----------------------------------------------------------------


async def test_only_the_holder_extends_or_releases_a_lock(scripts, redis, namespace) -> None:
    key = Keys(namespace).reconcile_lock
    await redis.set(key, "holder", px=1000)

    assert not await scripts.lock_extend(key, "intruder", 60_000)
    assert await redis.pttl(key) <= 1000
    assert await scripts.lock_extend(key, "holder", 60_000)
    assert await redis.pttl(key) > 1000

    assert not await scripts.lock_release(key, "intruder")
    assert await redis.get(key) == b"holder"
    assert await scripts.lock_release(key, "holder")
    assert not await redis.exists(key)
    assert not await scripts.lock_extend(key, "holder", 60_000)  # gone: nothing to extend


# -- live_register -----------------------------------------------------------------------------


async def test_live_register_evicts_the_oldest_and_tells_its_node(
    scripts, redis, namespace
) -> None:
    keys = Keys(namespace)
    user = str(uuid.uuid4())
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.live_control_channel("node-a"))
    await pubsub.get_message(timeout=1)

    assert await scripts.live_register(user, "node-a|1", 2, 60) == []
    assert await scripts.live_register(user, "node-b|2", 2, 60) == []
    evicted = await scripts.live_register(user, "node-b|3", 2, 60)

    assert evicted == ["node-a|1"]
    notice = await pubsub.get_message(timeout=1)
    assert notice is not None and notice["data"] == b"node-a|1"
    await pubsub.aclose()
    members = await redis.zrange(keys.live_connections(user), 0, -1)
    assert members == [b"node-b|2", b"node-b|3"]
    assert 0 < await redis.ttl(keys.live_connections(user)) <= 60
