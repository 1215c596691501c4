"""Boards in PostgreSQL: the one commit keeps every board and period equal to its history.

The clock is the test's: the commit takes an explicit instant (the service passes none and
the database clock decides), so period boundaries are tested at 23:59:59.9 and 00:00:00.0
without waiting for midnight.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from app.core.boards import Board, RowKey, Window, new_board
from app.core.catalog import Action
from app.core.ranking import shared_ranks
from app.db import boards as db_boards
from app.db.accounts import ensure_user
from app.db.actions import list_actions, upsert_actions
from app.db.completions import commit_completion

QUIZ_ACTIONS = [Action(f"quiz_{i}", f"Quiz {i}", 10 + i, tags=("quiz",)) for i in range(10)]
LEVEL_ACTIONS = [Action(f"level_{i}", f"Level {i}", 40 + i, tags=("level",)) for i in range(10)]
BOTH = [Action(f"combo_{i}", f"Combo {i}", 60 + i, tags=("quiz", "level")) for i in range(5)]
DAILY = Action("login", "Daily login", 5, repeat="daily")
ACTIONS = [*QUIZ_ACTIONS, *LEVEL_ACTIONS, *BOTH, DAILY]

SUNDAY_LAST = datetime(2026, 11, 29, 23, 59, 59, 900_000, tzinfo=UTC)
MONDAY_FIRST = datetime(2026, 11, 30, 0, 0, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
async def pool(database_url: str) -> asyncpg.Pool:
    async with asyncpg.create_pool(database_url, min_size=1, max_size=8) as created:
        await upsert_actions(created, ACTIONS)  # type: ignore[arg-type]
        yield created


async def user(conn: asyncpg.Pool, name: str | None = None) -> str:
    return (await ensure_user(conn, name or f"u_{uuid.uuid4().hex[:10]}")).user_id


async def scores(conn: asyncpg.Pool, user_id: str) -> dict[tuple[str, str], int]:
    rows = await conn.fetch(
        "SELECT board_id, period, score FROM board_scores WHERE user_id = $1", user_id
    )
    return {(r["board_id"], r["period"]): r["score"] for r in rows}


async def test_the_built_in_boards_exist(pool: asyncpg.Pool) -> None:
    found = {b.id: b.window for b in await db_boards.list_boards(pool)}
    assert found == {
        "all-time": Window.ALL,
        "daily": Window.DAY,
        "weekly": Window.WEEK,
        "monthly": Window.MONTH,
    }


async def test_one_commit_counts_on_every_built_in_board_in_its_period(pool) -> None:
    alice = await user(pool)
    committed = await commit_completion(pool, alice, "quiz_1", at("2026-11-18T10:00:00Z"))
    assert committed is not None and committed.score == 11
    assert {(b.board_id, b.period, b.score) for b in committed.boards} == {
        ("daily", "2026-11-18", 11),
        ("weekly", "2026-W47", 11),
        ("monthly", "2026-11", 11),
    }
    ends = {b.board_id: b.ends_at for b in committed.boards}
    assert ends == {
        "daily": at("2026-11-19T00:00:00Z"),
        "weekly": at("2026-11-23T00:00:00Z"),
        "monthly": at("2026-12-01T00:00:00Z"),
    }
    # The all-time board is users.score itself: no second copy to drift.
    assert await scores(pool, alice) == {
        ("daily", "2026-11-18"): 11,
        ("weekly", "2026-W47"): 11,
        ("monthly", "2026-11"): 11,
    }
    assert await pool.fetchval("SELECT score FROM users WHERE id = $1", alice) == 11


async def test_a_repeat_changes_no_board(pool) -> None:
    alice = await user(pool)
    await commit_completion(pool, alice, "quiz_1", at("2026-11-18T10:00:00Z"))
    again = await commit_completion(pool, alice, "quiz_1", at("2026-11-18T11:00:00Z"))
    assert again is None
    assert set((await scores(pool, alice)).values()) == {11}


async def test_the_last_tenth_of_sunday_and_the_first_instant_of_monday(pool) -> None:
    alice = await user(pool)
    before = await commit_completion(pool, alice, "quiz_1", SUNDAY_LAST)
    after = await commit_completion(pool, alice, "quiz_2", MONDAY_FIRST)
    assert before is not None and after is not None
    assert {(b.board_id, b.period) for b in before.boards} == {
        ("daily", "2026-11-29"),
        ("weekly", "2026-W48"),
        ("monthly", "2026-11"),
    }
    assert {(b.board_id, b.period) for b in after.boards} == {
        ("daily", "2026-11-30"),
        ("weekly", "2026-W49"),
        ("monthly", "2026-11"),
    }
    assert await scores(pool, alice) == {
        ("daily", "2026-11-29"): 11,
        ("daily", "2026-11-30"): 12,
        ("weekly", "2026-W48"): 11,
        ("weekly", "2026-W49"): 12,
        ("monthly", "2026-11"): 23,
    }


async def test_the_month_and_the_iso_year_turn_at_midnight_utc(pool) -> None:
    bob, carol = await user(pool), await user(pool)
    await commit_completion(pool, bob, "quiz_1", at("2026-11-30T23:59:59.900Z"))
    await commit_completion(pool, bob, "quiz_2", at("2026-12-01T00:00:00Z"))
    assert (await scores(pool, bob))[("monthly", "2026-11")] == 11
    assert (await scores(pool, bob))[("monthly", "2026-12")] == 12
    # 1 January 2027 is a Friday: still ISO week 53 of 2026; Monday 4 January starts 2027-W01.
    await commit_completion(pool, carol, "quiz_1", at("2027-01-01T12:00:00Z"))
    await commit_completion(pool, carol, "quiz_2", at("2027-01-03T23:59:59.999999Z"))
    await commit_completion(pool, carol, "quiz_3", at("2027-01-04T00:00:00Z"))
    assert (await scores(pool, carol))[("weekly", "2026-W53")] == 23
    assert (await scores(pool, carol))[("weekly", "2027-W01")] == 13
    assert (await scores(pool, carol))[("monthly", "2027-01")] == 36


async def test_a_daily_action_repeats_on_the_next_utc_day_and_counts_there(pool) -> None:
    alice = await user(pool)
    assert await commit_completion(pool, alice, "login", SUNDAY_LAST) is not None
    assert (
        await commit_completion(pool, alice, "login", SUNDAY_LAST + timedelta(milliseconds=50))
        is None
    )
    assert await commit_completion(pool, alice, "login", MONDAY_FIRST) is not None
    assert (await scores(pool, alice))[("daily", "2026-11-30")] == 5


async def test_a_tagged_board_counts_only_actions_with_its_tag(pool) -> None:
    await db_boards.insert_board(pool, new_board("quizzes", "Quizzes", "week", action_tag="quiz"))
    alice = await user(pool)
    await commit_completion(pool, alice, "quiz_1", at("2026-11-18T10:00:00Z"))
    await commit_completion(pool, alice, "level_1", at("2026-11-18T10:01:00Z"))
    await commit_completion(pool, alice, "combo_1", at("2026-11-18T10:02:00Z"))
    mine = await scores(pool, alice)
    assert mine[("quizzes", "2026-W47")] == 11 + 61
    assert mine[("weekly", "2026-W47")] == 11 + 41 + 61


async def test_a_tournament_counts_from_its_start_up_to_its_end(pool) -> None:
    start, end = at("2026-11-20T18:00:00Z"), at("2026-11-22T18:00:00Z")
    cup = new_board("winter-cup", "Winter cup", "tournament", starts_at=start, ends_at=end)
    await db_boards.insert_board(pool, cup)
    early, first, last, late = [await user(pool) for _ in range(4)]
    await commit_completion(pool, early, "quiz_1", start - timedelta(microseconds=1))
    await commit_completion(pool, first, "quiz_1", start)
    await commit_completion(pool, last, "quiz_1", end - timedelta(milliseconds=100))
    await commit_completion(pool, late, "quiz_1", end)
    on_cup = {
        r["user_id"]: r["score"]
        for r in await pool.fetch(
            "SELECT user_id::text, score FROM board_scores WHERE board_id = 'winter-cup'"
        )
    }
    assert on_cup == {first: 11, last: 11}
    period = await pool.fetchval(
        "SELECT DISTINCT period FROM board_scores WHERE board_id = 'winter-cup'"
    )
    assert period == "winter-cup"


async def test_an_ended_board_counts_nothing_after_its_end(pool) -> None:
    await db_boards.insert_board(pool, new_board("quizzes", "Quizzes", "day", action_tag="quiz"))
    ended = await db_boards.end_board(pool, "quizzes", at("2026-11-18T12:00:00Z"))
    assert ended is not None and ended.ended_at == at("2026-11-18T12:00:00Z")
    assert await db_boards.end_board(pool, "quizzes") is None  # already ended
    alice = await user(pool)
    await commit_completion(pool, alice, "quiz_1", at("2026-11-18T11:59:59Z"))
    await commit_completion(pool, alice, "quiz_2", at("2026-11-18T12:00:00Z"))
    assert (await scores(pool, alice))[("quizzes", "2026-11-18")] == 11


async def test_a_second_board_of_every_action_over_all_time_is_refused(pool) -> None:
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute(
            "INSERT INTO boards (id, name, window_kind) VALUES ('everything', 'E', 'all')"
        )


async def test_the_database_and_the_core_agree_on_every_period(pool) -> None:
    cup = Board(
        "cup",
        "Cup",
        Window.TOURNAMENT,
        None,
        at("2026-03-01T00:00:00Z"),
        at("2026-04-01T00:00:00Z"),
    )
    boards = [Board("d", "D", Window.DAY), Board("w", "W", Window.WEEK)]
    boards += [Board("m", "M", Window.MONTH), Board("a", "A", Window.ALL, "x"), cup]
    rng = random.Random(48)
    instants = [
        datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.uniform(0, 10 * 365 * 86400))
        for _ in range(300)
    ]
    # Every boundary of 2026 to the microsecond on either side.
    for day in range(366):
        midnight = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day)
        instants += [midnight - timedelta(microseconds=1), midnight]
    for board in boards:
        rows = await pool.fetch(
            "SELECT t, board_period($1, $2, $3, $4, t) AS period,"
            "       board_period_end($1, $3, $4, t) AS ends_at"
            "  FROM unnest($5::timestamptz[]) AS t",
            board.window.value,
            board.id,
            board.starts_at,
            board.ends_at,
            instants,
        )
        for row in rows:
            expected = board.period_at(row["t"])
            assert row["period"] == (expected.id if expected else None), row["t"]
            if expected is not None:
                assert row["ends_at"] == expected.ends_at, row["t"]


# -- the invariant under a concurrent workload -----------------------------------------------------


async def check_invariants(pool: asyncpg.Pool) -> int:
    """For every board and period: each user's score = the sum of their matching history rows
    in that window; users.score = the sum of all of them. Returns the (board, period) count."""
    boards = await db_boards.list_boards(pool)
    tags = {a.id: a.tags for a in await list_actions(pool)}
    history = await pool.fetch(
        "SELECT user_id::text, action_id, score_change, created_at FROM score_history"
    )
    expected: dict[tuple[str, str, str], int] = defaultdict(int)
    for h in history:
        for board in boards:
            if board.is_all_time or not board.counts(tags[h["action_id"]]):
                continue
            if not board.is_open(h["created_at"]):
                continue
            period = board.period_at(h["created_at"])
            assert period is not None
            expected[(board.id, period.id, h["user_id"])] += h["score_change"]
    stored = {
        (r["board_id"], r["period"], r["user_id"]): r["score"]
        for r in await pool.fetch("SELECT board_id, period, user_id::text, score FROM board_scores")
    }
    assert stored == dict(expected)
    totals: dict[str, int] = defaultdict(int)
    for h in history:
        totals[h["user_id"]] += h["score_change"]
    users = {r["id"]: r["score"] for r in await pool.fetch("SELECT id::text, score FROM users")}
    assert users == {u: totals.get(u, 0) for u in users}
    return len({(b, p) for b, p, _ in stored})


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_every_board_and_period_equals_its_history_under_concurrent_commits(
    pool, seed: int
) -> None:
    rng = random.Random(seed)
    cup_start = MONDAY_FIRST - timedelta(hours=1)
    await db_boards.insert_board(
        pool,
        new_board(
            "cup",
            "Cup",
            "tournament",
            action_tag="quiz",
            starts_at=cup_start,
            ends_at=MONDAY_FIRST + timedelta(hours=1),
        ),
    )
    await db_boards.insert_board(pool, new_board("levels", "Levels", "day", action_tag="level"))
    users = [await user(pool) for _ in range(12)]
    # Instants clustered around the Sunday/Monday and November/December boundaries.
    anchors = [MONDAY_FIRST, at("2026-12-01T00:00:00Z"), MONDAY_FIRST + timedelta(hours=1)]

    def instant() -> datetime:
        return rng.choice(anchors) + timedelta(microseconds=rng.randint(-2_000_000, 2_000_000))

    jobs = [(rng.choice(users), rng.choice(ACTIONS).id, instant()) for _ in range(400)]
    results = await asyncio.gather(*(commit_completion(pool, *job) for job in jobs))
    assert any(r is not None for r in results) and any(r is None for r in results)
    assert await check_invariants(pool) >= 8


# -- reads ---------------------------------------------------------------------------------------


async def fill(pool, count: int, board: str = "weekly") -> list[str]:
    """Users with scores 10..(ties included) on the weekly board of 2026-W47."""
    ids = []
    for i in range(count):
        uid = await user(pool, f"r{i:03d}")
        ids.append(uid)
        for action in QUIZ_ACTIONS[: 1 + i % 4]:
            await commit_completion(
                pool, uid, action.id, at("2026-11-18T10:00:00Z") + timedelta(seconds=i)
            )
    return ids


def reference(rows: list[asyncpg.Record]) -> list[tuple[str, int, int]]:
    ordered = sorted(rows, key=lambda r: (-r["score"], r["reached_at"], _desc(r["user_id"])))
    return [
        (e.user_id, e.score, e.rank)
        for e in shared_ranks([(r["user_id"], "", r["score"]) for r in ordered])
    ]


def _desc(user_id: str) -> tuple[int, ...]:
    return tuple(-b for b in uuid.UUID(user_id).bytes)


async def all_rows(pool, board: str, period: str) -> list[asyncpg.Record]:
    since = datetime(1970, 1, 1, tzinfo=UTC)
    return list(await pool.fetch(db_boards.STANDINGS_SQL.of(board), board, period, since))


@pytest.mark.parametrize(("board", "period"), [("weekly", "2026-W47"), ("all-time", "all")])
async def test_pages_walk_the_whole_board_in_ranking_order_with_shared_ranks(
    pool, board: str, period: str
) -> None:
    await fill(pool, 23)
    expected = reference(await all_rows(pool, board, period))
    walked: list[tuple[str, int, int]] = []
    after: RowKey | None = None
    for _ in range(10):
        run = await db_boards.page(pool, board, period, 4, after)
        walked += [(e.user_id, e.score, e.rank) for e in run.entries()]
        if len(run.rows) < 4:
            break
        after = run.rows[-1].key
    assert walked == expected
    assert await db_boards.total(pool, board, period) == 23


async def test_a_page_continues_after_its_cursor_while_others_climb_above_it(pool) -> None:
    await fill(pool, 12)
    first = await db_boards.page(pool, "weekly", "2026-W47", 5)
    before = reference(await all_rows(pool, "weekly", "2026-W47"))
    # Three new players jump to the top: with offsets, page 2 would repeat rows of page 1.
    for _ in range(3):
        await commit_completion(pool, await user(pool), "combo_1", at("2026-11-18T11:00:00Z"))
    second = await db_boards.page(pool, "weekly", "2026-W47", 5, first.rows[-1].key)
    assert [r.user_id for r in second.rows] == [u for u, _, _ in before[5:10]]
    # ...and the ranks are today's: three places lower.
    assert [e.rank for e in second.entries()] == [rank + 3 for _, _, rank in before[5:10]]


async def test_around_a_user_gives_their_neighbours_with_ranks(pool) -> None:
    ids = await fill(pool, 15)
    expected = reference(await all_rows(pool, "weekly", "2026-W47"))
    for radius in (0, 2, 5):
        for position in (0, 3, 7, 14):
            target = expected[position][0]
            run = await db_boards.around(pool, "weekly", "2026-W47", target, radius)
            low, high = max(0, position - radius), position + radius + 1
            assert [(e.user_id, e.score, e.rank) for e in run.entries()] == expected[low:high]
    nobody = await user(pool)
    assert (await db_boards.around(pool, "weekly", "2026-W47", nobody, 3)).rows == []
    assert ids


async def test_periods_with_scores_newest_first(pool) -> None:
    alice = await user(pool)
    for day, action in zip((3, 10, 17), ("quiz_1", "quiz_2", "quiz_3"), strict=True):
        await commit_completion(pool, alice, action, datetime(2026, 11, day, tzinfo=UTC))
    assert await db_boards.periods(pool, "weekly", 10) == ["2026-W47", "2026-W46", "2026-W45"]
    assert await db_boards.periods(pool, "daily", 2) == ["2026-11-17", "2026-11-10"]


async def test_a_users_boards_and_recent_completions(pool) -> None:
    alice, bob = await user(pool), await user(pool)
    await commit_completion(pool, bob, "level_1", at("2026-11-18T09:00:00Z"))
    await commit_completion(pool, alice, "quiz_1", at("2026-11-18T10:00:00Z"))
    await commit_completion(pool, alice, "quiz_2", at("2026-11-19T10:00:00Z"))
    standings = await db_boards.user_boards(
        pool,
        alice,
        [
            ("all-time", "all"),
            ("weekly", "2026-W47"),
            ("daily", "2026-11-18"),
            ("monthly", "2026-10"),
        ],
    )
    assert [(s.board_id, s.period, s.score, s.rank) for s in standings] == [
        ("all-time", "all", 23, 2),
        ("weekly", "2026-W47", 23, 2),
        ("daily", "2026-11-18", 11, 2),
    ]
    recent = await db_boards.recent_completions(pool, alice)
    assert [(r.action_id, r.name, r.points_earned) for r in recent] == [
        ("quiz_2", "Quiz 2", 12),
        ("quiz_1", "Quiz 1", 11),
    ]
