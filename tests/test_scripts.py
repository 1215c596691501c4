"""Contract tests of the scripts facade against a real Redis-compatible server: loading, the
leaderboard and rate-limit scripts, and every script after ``SCRIPT FLUSH``. The reconciler's,
the lock's and the live registry's scripts: tests/test_scripts_repair.py."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from redis.asyncio import Redis

from app.core.ranking import ranking_member
from app.redis.keys import Keys
from app.redis.scripts import BoardApply, Scripts, Standing, read_script, script_names

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def standing(user_id: str, score: int, at: datetime, name: str | None = None) -> Standing:
    return Standing(user_id, name or f"user-{user_id[:4]}", score, ranking_member(user_id, at))


@pytest.fixture
async def scripts(redis: Redis, namespace: str) -> Scripts:
    loaded = Scripts(redis, Keys(namespace))
    await loaded.load()
    return loaded


@pytest.fixture
async def warm(scripts: Scripts) -> Scripts:
    """A ranking that has been seeded (has a version), as after the first seed."""
    await scripts.publish_top10("2026-11-28T12:00:00.000Z", new_epoch=True)
    return scripts


async def published(redis: Redis, keys: Keys) -> dict[str, object]:
    return orjson.loads(await redis.get(keys.message))


async def test_apply_on_a_cold_ranking_reports_it_and_publishes_nothing(
    scripts, redis, namespace
) -> None:
    result = await scripts.apply_score(standing(str(uuid.uuid4()), 10, T0), "t")
    assert result.cold
    assert not result.top_changed
    assert await redis.get(Keys(namespace).message) is None


async def test_apply_ranks_and_publishes_when_the_top_changes(warm, redis, namespace) -> None:
    keys = Keys(namespace)
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())

    first = await warm.apply_score(standing(alice, 10, T0, "alice"), "2026-11-28T12:00:01.000Z")
    second = await warm.apply_score(
        standing(bob, 50, T0 + timedelta(seconds=1), "bob"), "2026-11-28T12:00:02.000Z"
    )

    assert (first.applied, first.rank, first.previous_rank, first.top_changed) == (
        True,
        1,
        None,
        True,
    )
    assert (second.rank, second.top_changed) == (1, True)
    assert second.version == first.version + 1
    message = await published(redis, keys)
    assert second.message == await redis.get(keys.message)  # returned as published
    assert message["type"] == "LEADERBOARD_UPDATE"
    assert message["version"] == second.version
    assert message["data"] == {
        "users": [
            {"userId": bob, "username": "bob", "score": 50, "rank": 1},
            {"userId": alice, "username": "alice", "score": 10, "rank": 2},
        ],
        "updatedAt": "2026-11-28T12:00:02.000Z",
    }


async def test_repeating_an_apply_changes_nothing(warm) -> None:
    user = str(uuid.uuid4())
    first = await warm.apply_score(standing(user, 10, T0), "t")
    again = await warm.apply_score(standing(user, 10, T0), "t")
    assert not again.applied
    assert not again.top_changed
    assert again.message == b""
    assert again.version == first.version


async def test_a_late_apply_never_undoes_a_newer_one(warm, redis, namespace) -> None:
    user = str(uuid.uuid4())
    await warm.apply_score(standing(user, 60, T0 + timedelta(seconds=2)), "t")
    late = await warm.apply_score(standing(user, 10, T0 + timedelta(seconds=1)), "t")
    assert not late.applied
    assert late.rank == 1
    keys = Keys(namespace)
    assert await redis.zrange(keys.ranking, 0, -1, withscores=True) == [
        (ranking_member(user, T0 + timedelta(seconds=2)).encode(), 60.0)
    ]


async def test_nothing_is_published_when_the_top_ten_stays_the_same(warm, redis, namespace) -> None:
    leaders = [str(uuid.uuid4()) for _ in range(10)]
    for i, user in enumerate(leaders):
        await warm.apply_score(standing(user, 100 - i, T0), "t")
    pubsub = redis.pubsub()
    await pubsub.subscribe(Keys(namespace).updates_channel)
    await pubsub.get_message(timeout=1)  # the subscribe confirmation

    outsider = await warm.apply_score(standing(str(uuid.uuid4()), 5, T0), "t")

    assert not outsider.top_changed
    assert outsider.rank == 11
    assert await pubsub.get_message(timeout=0.2) is None
    await pubsub.aclose()


async def test_a_changed_score_inside_the_top_ten_is_a_change(warm) -> None:
    user = str(uuid.uuid4())
    await warm.apply_score(standing(user, 10, T0), "t")
    moved = await warm.apply_score(standing(user, 20, T0 + timedelta(seconds=1)), "t")
    assert moved.top_changed
    assert moved.previous_rank == 1


async def test_ties_share_a_rank_and_the_earlier_reacher_comes_first(
    warm, redis, namespace
) -> None:
    a, b, c, d = (str(uuid.uuid4()) for _ in range(4))
    await warm.apply_score(standing(a, 100, T0), "t")
    await warm.apply_score(standing(c, 90, T0 + timedelta(seconds=5)), "t")
    await warm.apply_score(standing(b, 90, T0 + timedelta(seconds=3)), "t")
    result = await warm.apply_score(standing(d, 80, T0), "t")
    users = (await published(redis, Keys(namespace)))["data"]["users"]
    assert [(u["userId"], u["rank"]) for u in users] == [(a, 1), (b, 2), (c, 2), (d, 4)]
    assert result.rank == 4


async def test_usernames_are_escaped_in_the_message(warm, redis, namespace) -> None:
    await warm.apply_score(standing(str(uuid.uuid4()), 10, T0, 'qu"ote\\back'), "t")
    users = (await published(redis, Keys(namespace)))["data"]["users"]
    assert users[0]["username"] == 'qu"ote\\back'


async def test_a_lost_version_counter_makes_the_ranking_cold_until_a_new_epoch_starts(
    warm, redis, namespace
) -> None:
    keys = Keys(namespace)
    await warm.apply_score(standing(str(uuid.uuid4()), 10, T0), "t")
    old_epoch = (await published(redis, keys))["epoch"]
    await redis.delete(*keys.leaderboard_keys())

    assert (await warm.apply_score(standing(str(uuid.uuid4()), 20, T0), "t")).cold
    assert (await warm.publish_top10("t")).cold
    rebuilt = await warm.publish_top10("t", new_epoch=True)  # as the rebuild's swap does

    assert rebuilt.top_changed and not rebuilt.cold
    message = await published(redis, keys)
    assert message["epoch"] != old_epoch
    assert int(message["epoch"]) > int(old_epoch)


async def test_publish_top10_publishes_only_a_changed_top_unless_a_new_epoch_is_asked(
    warm, redis, namespace
) -> None:
    keys = Keys(namespace)
    await warm.apply_score(standing(str(uuid.uuid4()), 10, T0), "t")
    before = await published(redis, keys)

    same = await warm.publish_top10("t2")
    assert (same.top_changed, same.version) == (False, before["version"])
    assert await published(redis, keys) == before

    renewed = await warm.publish_top10("t3", new_epoch=True)
    after = await published(redis, keys)
    assert renewed.top_changed and renewed.version == after["version"]
    assert int(after["epoch"]) > int(before["epoch"])  # type: ignore[call-overload]
    assert after["data"]["users"] == before["data"]["users"]  # type: ignore[index]


async def test_rate_limit_allows_the_limit_then_refuses_with_a_retry_time(
    scripts, namespace
) -> None:
    key = f"{namespace}:rl"
    decisions = [await scripts.rate_limit(key, 3, 60_000, str(i)) for i in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert 59_000 < decisions[3].retry_after_ms <= 60_000


async def test_rate_limit_window_slides(scripts, namespace) -> None:
    key = f"{namespace}:rl"
    assert (await scripts.rate_limit(key, 1, 200, "a")).allowed
    refused = await scripts.rate_limit(key, 1, 200, "b")
    assert not refused.allowed
    assert refused.retry_after_ms <= 200
    # Poll until the window has passed by the server's clock: then a slot is free again.
    for _ in range(100):
        if (await scripts.rate_limit(key, 1, 200, "c")).allowed:
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the window never slid")


def test_a_library_is_included_once_and_before_what_uses_it() -> None:
    source = read_script("apply_score")  # uses lib_top10, which uses lib_ranking
    ranking = source.index("-- lib_ranking.lua")
    top10 = source.index("-- lib_top10.lua")
    assert ranking < top10 < source.index("-- apply_score.lua")
    assert source.count("-- lib_ranking.lua") == 1


async def test_every_script_in_lua_has_a_method_and_compiles(redis, namespace) -> None:
    facade = Scripts(redis, Keys(namespace))
    assert sorted(facade.registered()) == script_names()
    await facade.load()
    shas = list(facade.registered().values())
    assert all(await redis.script_exists(*shas))


async def test_every_script_works_after_script_flush(warm, redis, namespace) -> None:
    """NOSCRIPT (a flushed or restarted server) makes each method load its script again."""
    keys = Keys(namespace)
    shas = list(warm.registered().values())
    await redis.script_flush()
    assert not any(await redis.script_exists(*shas))

    user = str(uuid.uuid4())
    assert (await warm.apply_score(standing(user, 10, T0), "t")).applied
    assert not (await warm.publish_top10("t")).cold
    assert (await warm.rate_limit(f"{namespace}:rl", 1, 1000, "x")).allowed
    other = standing(str(uuid.uuid4()), 5, T0)
    assert (await warm.reconcile_batch("fix", [other], 60)).missing == 1
    await redis.set(keys.reconcile_lock, "token")
    assert await warm.lock_extend(keys.reconcile_lock, "token", 10_000)
    assert await warm.reconcile_swap("token", "t") is not None
    assert await warm.lock_release(keys.reconcile_lock, "token")
    assert await warm.live_register(user, "node|conn", 2, 60) == []
    assert not (await warm.board_page(keys.all_time, 10, None)).cold
    board = keys.board("weekly", "2026-W48")
    applied = await warm.apply_scores([BoardApply(board, standing(user, 10, T0))], "t")
    assert applied[0].applied
    await warm.remove_user(user, "t", board)

    # Every script was loaded again by the call that needed it.
    loaded = dict(zip(warm.registered(), await redis.script_exists(*shas), strict=True))
    assert all(loaded.values()), loaded


async def test_a_broken_script_fails_start_up(redis, namespace, tmp_path, monkeypatch) -> None:
    from redis.exceptions import ResponseError

    import app.redis.scripts as scripts_module

    folder = scripts_module.resource_dir("lua")
    for source in folder.glob("*.lua"):
        (tmp_path / source.name).write_text(source.read_text())
    (tmp_path / "reconcile_swap.lua").write_text("return {1, 2")
    monkeypatch.setattr(scripts_module, "resource_dir", lambda name: tmp_path)
    with pytest.raises(ResponseError):
        await Scripts(redis, Keys(namespace)).load()
