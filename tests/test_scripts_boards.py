"""The boards' scripts against a real Redis-compatible server: one round trip applies a commit
to every board, a period's keys expire after it, and board_read.lua pages and reads around a
user exactly in the ranking order, with shared ranks."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from redis.asyncio import Redis

from app.core.boards import RowKey
from app.core.ranking import member_of, micros, ranking_member, shared_ranks
from app.redis.keys import Keys
from app.redis.ranking_cache import PERIOD_KEYS_GRACE, expire_at_ms
from app.redis.scripts import BoardApply, BoardRow, Scripts, Standing

# Periods that end in the future: their keys must still be there to look at.
T0 = datetime.now(UTC).replace(microsecond=0)
WEEK_ENDS = T0 + timedelta(days=3)


def standing(user_id: str, score: int, at: datetime) -> Standing:
    return Standing(user_id, f"user-{user_id[:4]}", score, ranking_member(user_id, at))


@pytest.fixture
async def scripts(redis: Redis, namespace: str) -> Scripts:
    loaded = Scripts(redis, Keys(namespace))
    await loaded.load()
    return loaded


async def test_one_round_trip_applies_a_commit_to_every_board(scripts, redis, namespace) -> None:
    keys = Keys(namespace)
    weekly, daily = keys.board("weekly", "2026-W48"), keys.board("daily", "2026-11-28")
    for target in (keys.all_time, weekly):  # started: their version counters exist
        await scripts.publish_top10("t", new_epoch=True, board=target)
    user = str(uuid.uuid4())
    results = await scripts.apply_scores(
        [
            BoardApply(keys.all_time, standing(user, 120, T0)),
            BoardApply(weekly, standing(user, 20, T0), expire_at_ms(WEEK_ENDS)),
            BoardApply(daily, standing(user, 20, T0), expire_at_ms(T0 + timedelta(hours=1))),
        ],
        "2026-11-28T12:00:00.000Z",
    )
    assert [r.applied for r in results] == [True, True, True]
    # The daily period was not started: cold, nothing published from it, but the row is in.
    assert [r.top_changed for r in results] == [True, True, False] and results[2].cold
    assert await redis.zscore(daily.ranking, ranking_member(user, T0)) == 20
    message = orjson.loads(results[1].message)
    assert list(message)[:3] == ["type", "board", "period"]
    assert (message["board"], message["period"]) == ("weekly", "2026-W48")
    assert message["data"]["users"][0]["score"] == 20
    all_time = orjson.loads(results[0].message)
    assert (all_time["board"], all_time["period"]) == ("all-time", "all")


async def test_a_periods_keys_expire_after_it_ends_and_all_time_never(
    scripts, redis, namespace
) -> None:
    keys = Keys(namespace)
    weekly = keys.board("weekly", "2026-W48")
    await scripts.publish_top10(
        "t", new_epoch=True, board=weekly, expire_at_ms=expire_at_ms(WEEK_ENDS)
    )
    await scripts.apply_scores(
        [
            BoardApply(keys.all_time, standing(str(uuid.uuid4()), 10, T0)),
            BoardApply(weekly, standing(str(uuid.uuid4()), 10, T0), expire_at_ms(WEEK_ENDS)),
        ],
        "t",
    )
    expected = int((WEEK_ENDS + PERIOD_KEYS_GRACE).timestamp() * 1000)
    for key in weekly.leaderboard_keys():
        assert await redis.pexpiretime(key) == expected, key
    assert await redis.pexpiretime(keys.all_time.ranking) == -1
    # A late apply to a period long over leaves nothing behind.
    old = keys.board("weekly", "2020-W01")
    await scripts.apply_scores(
        [
            BoardApply(
                old,
                standing(str(uuid.uuid4()), 10, T0),
                expire_at_ms(datetime(2020, 1, 6, tzinfo=UTC)),
            )
        ],
        "t",
    )
    assert not await redis.exists(*old.leaderboard_keys())


async def test_every_board_publishes_on_the_one_channel(scripts, redis, namespace) -> None:
    keys = Keys(namespace)
    weekly = keys.board("weekly", "2026-W48")
    await scripts.publish_top10("t", new_epoch=True, board=weekly)
    async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe(keys.updates_channel)
        await scripts.apply_scores([BoardApply(weekly, standing(str(uuid.uuid4()), 5, T0))], "t")
        message = None
        for _ in range(50):
            message = await pubsub.get_message(timeout=0.1)
            if message is not None:
                break
    assert message is not None and orjson.loads(message["data"])["board"] == "weekly"


# -- board_read.lua ---------------------------------------------------------------------------


def member(row: BoardRow) -> str:
    return member_of(row.user_id, row.reached_us)


def order_key(user_id: str, score: int, reached: datetime) -> tuple[int, datetime, tuple[int, ...]]:
    return (-score, reached, tuple(-b for b in uuid.UUID(user_id).bytes))


@pytest.fixture
async def filled(scripts, namespace):  # type: ignore[no-untyped-def]
    """A started board with 60 users: scores 1..6 (big ties), reached at random times."""
    keys = Keys(namespace)
    board = keys.board("weekly", "2026-W48")
    await scripts.publish_top10("t", new_epoch=True, board=board)
    rng = random.Random(5)
    rows = []
    for _ in range(60):
        user = str(uuid.uuid4())
        score = rng.randint(1, 6)
        reached = T0 + timedelta(microseconds=rng.randint(0, 5))  # same instants: id decides
        rows.append((user, score, reached))
    await scripts.apply_scores([BoardApply(board, standing(u, s, t)) for u, s, t in rows], "t")
    rows.sort(key=lambda r: order_key(*r))
    ranks = [e.rank for e in shared_ranks([(u, "", s) for u, s, _ in rows])]
    return board, [(u, s, t, rank) for (u, s, t), rank in zip(rows, ranks, strict=True)]


async def test_pages_after_a_cursor_follow_the_ranking_order_with_shared_ranks(
    scripts, filled
) -> None:
    board, expected = filled
    walked = []
    after = None
    while True:
        read = await scripts.board_page(board, 7, after)
        assert read.total == 60 and not read.cold
        walked += [(member(r), r.score, r.rank) for r in read.rows]
        if len(read.rows) < 7:
            break
        last = read.rows[-1]
        after = (last.score, member(last))
    assert walked == [(ranking_member(u, t), s, rank) for u, s, t, rank in expected]


async def test_a_page_continues_where_a_moved_row_stood(scripts, filled, redis) -> None:
    board, expected = filled
    first = await scripts.board_page(board, 10, None)
    cut = first.rows[-1]
    cut_member = member(cut)
    # That row's user scores since: its old member is gone from the ranking.
    user = expected[9][0]
    await scripts.apply_scores(
        [BoardApply(board, standing(user, 100, T0 + timedelta(hours=1)))], "t"
    )
    assert await redis.zscore(board.ranking, cut_member) is None
    second = await scripts.board_page(board, 10, (cut.score, cut_member))
    assert [member(r) for r in second.rows] == [
        ranking_member(u, t) for u, _, t, _ in expected[10:20]
    ]
    # The stand-in for the cursor's member is gone again.
    assert await redis.zscore(board.ranking, cut_member) is None


async def test_around_a_user_and_a_user_without_points(scripts, filled) -> None:
    board, expected = filled
    for position in (0, 1, 30, 59):
        user = expected[position][0]
        read = await scripts.board_around(board, user, 3)
        low = max(0, position - 3)
        assert [(member(r), r.rank) for r in read.rows] == [
            (ranking_member(u, t), rank) for u, _, t, rank in expected[low : position + 4]
        ]
    nobody = await scripts.board_around(board, str(uuid.uuid4()), 3)
    assert not nobody.ranked and nobody.rows == [] and nobody.total == 60


async def test_a_cold_board_reads_nothing(scripts, namespace) -> None:
    cold = Keys(namespace).board("daily", "2026-11-28")
    await scripts.apply_scores([BoardApply(cold, standing(str(uuid.uuid4()), 5, T0))], "t")
    assert (await scripts.board_page(cold, 10, None)).cold
    assert (await scripts.board_around(cold, str(uuid.uuid4()), 2)).cold


def test_a_row_key_is_its_member() -> None:
    user = str(uuid.uuid4())
    assert RowKey(5, micros(T0), user).member == ranking_member(user, T0)
