"""Reading boards, decided in the core: which period, which source, cursors, not ranked.

The cache and the database are in-memory twins of the BoardRankings / BoardStore ports, so
these run in milliseconds; tests/test_api_boards.py proves the real adapters against servers.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.core.board_reads import (
    BoardCatalog,
    BoardNotFound,
    NotRanked,
    UserNotFound,
    check_user_id,
    public_profile,
    read_around,
    read_page,
    select,
)
from app.core.boards import BUILT_IN_BOARDS, Board, RowKey, Window, decode_cursor
from app.core.errors import InvalidInput
from app.core.ports import (
    PublicUser,
    RankedRow,
    RankedRun,
    RecentCompletion,
    UserStanding,
)

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)  # a Wednesday of 2026-W48
CUP = Board(
    "cup", "Cup", Window.TOURNAMENT, None, NOW - timedelta(days=10), NOW - timedelta(days=8)
)


class MemoryRankings:
    """BoardRankings and BoardStore in memory: rows per (board, period), the one order."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], list[tuple[str, int, int]]] = {}
        self.available = True
        self.calls: list[str] = []

    def add(self, board: str, period: str, user_id: str, score: int, reached_us: int) -> None:
        self.rows.setdefault((board, period), []).append((user_id, score, reached_us))

    def _ordered(self, board: str, period: str) -> list[RankedRow]:
        rows = sorted(
            self.rows.get((board, period), []),
            key=lambda r: (-r[1], r[2], tuple(-b for b in uuid.UUID(r[0]).bytes)),
        )
        return [
            RankedRow(u, f"name-{u[:4]}", s, 1 + sum(o[1] > s for o in rows), RowKey(s, t, u))
            for u, s, t in rows
        ]

    async def page(self, board, period, limit, after) -> RankedRun | None:  # type: ignore[no-untyped-def]
        self.calls.append(f"page {board} {period}")
        if not self.available:
            return None
        rows = self._ordered(board, period)
        start = 0
        if after is not None:
            keys = [
                (-r.key.score, r.key.reached_us, tuple(-b for b in uuid.UUID(r.user_id).bytes))
                for r in rows
            ]
            cut = (
                -after.score,
                after.reached_us,
                tuple(-b for b in uuid.UUID(after.user_id).bytes),
            )
            start = sum(k <= cut for k in keys)
        return RankedRun(rows[start : start + limit], len(rows))

    async def around(self, board, period, user_id, radius) -> RankedRun | None:  # type: ignore[no-untyped-def]
        self.calls.append(f"around {board} {period}")
        if not self.available:
            return None
        rows = self._ordered(board, period)
        at = next((i for i, r in enumerate(rows) if r.user_id == user_id), None)
        if at is None:
            return RankedRun([], len(rows))
        return RankedRun(rows[max(0, at - radius) : at + radius + 1], len(rows))

    async def standings(self, user_id, wanted):  # type: ignore[no-untyped-def]
        found = []
        for board, period in wanted:
            for row in self._ordered(board, period):
                if row.user_id == user_id:
                    found.append(UserStanding(board, period, row.score, row.rank))
        return found

    async def recent(self, user_id, limit):  # type: ignore[no-untyped-def]
        return [RecentCompletion("quiz_1", "Quiz 1", 10, NOW)][:limit]

    async def public_user(self, user_id):  # type: ignore[no-untyped-def]
        return PublicUser(user_id, "ann", NOW) if user_id == ANN else None

    async def periods(self, board_id, limit):  # type: ignore[no-untyped-def]
        return []


ANN = str(uuid.uuid4())


@pytest.fixture
def catalog() -> BoardCatalog:
    return BoardCatalog([*BUILT_IN_BOARDS, CUP])


@pytest.fixture
def cache() -> MemoryRankings:
    return MemoryRankings()


@pytest.fixture
def store() -> MemoryRankings:
    return MemoryRankings()


def fill(source: MemoryRankings, board: str, period: str, scores: list[int]) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in scores]
    for i, (user_id, score) in enumerate(zip(ids, scores, strict=True)):
        source.add(board, period, user_id, score, 1_000 + i)
    return ids


def test_the_current_period_unless_one_is_named(catalog) -> None:  # type: ignore[no-untyped-def]
    current = select(catalog, "weekly", None, NOW)
    assert (current.period.id, current.current) == ("2026-W48", True)
    past = select(catalog, "weekly", "2026-W47", NOW)
    assert (past.period.id, past.current) == ("2026-W47", False)
    assert select(catalog, None, None, NOW).board.id == "all-time"
    # A finished tournament still reads its one period.
    assert (
        select(catalog, "cup", None, NOW).period.id,
        select(catalog, "cup", None, NOW).current,
    ) == ("cup", False)
    with pytest.raises(BoardNotFound):
        select(catalog, "nope", None, NOW)
    with pytest.raises(InvalidInput):
        select(catalog, "weekly", "2026-13", NOW)


async def test_pages_of_the_current_period_come_from_the_cache(catalog, cache, store) -> None:  # type: ignore[no-untyped-def]
    fill(cache, "weekly", "2026-W48", [50, 40, 40, 30, 20])
    selection = select(catalog, "weekly", None, NOW)
    first = await read_page(selection, cache, store, 2, None)
    assert [(r.score, r.rank) for r in first.rows] == [(50, 1), (40, 2)]
    assert first.total == 5 and first.next_cursor is not None
    second = await read_page(selection, cache, store, 2, first.next_cursor)
    third = await read_page(selection, cache, store, 2, second.next_cursor)
    assert [(r.score, r.rank) for r in second.rows + third.rows] == [(40, 2), (30, 4), (20, 5)]
    assert third.next_cursor is None
    assert store.calls == []
    # A page that ends exactly at the last row has no next cursor either.
    exact = await read_page(selection, cache, store, 5, None)
    assert exact.next_cursor is None and len(exact.rows) == 5


async def test_the_database_answers_when_the_cache_cannot_and_for_past_periods(
    catalog, cache, store
) -> None:  # type: ignore[no-untyped-def]
    fill(store, "weekly", "2026-W48", [10])
    fill(store, "weekly", "2026-W47", [30, 20])
    cache.available = False
    now = await read_page(select(catalog, "weekly", None, NOW), cache, store, 10, None)
    assert [r.score for r in now.rows] == [10]
    cache.available = True
    past = await read_page(select(catalog, "weekly", "2026-W47", NOW), cache, store, 10, None)
    assert [r.score for r in past.rows] == [30, 20]
    assert cache.calls == ["page weekly 2026-W48"]


async def test_a_cursor_works_only_on_its_board_and_period(catalog, cache, store) -> None:  # type: ignore[no-untyped-def]
    fill(cache, "weekly", "2026-W48", [50, 40, 30])
    weekly = select(catalog, "weekly", None, NOW)
    cursor = (await read_page(weekly, cache, store, 1, None)).next_cursor
    assert cursor is not None and decode_cursor(cursor, "weekly", "2026-W48")
    with pytest.raises(InvalidInput):
        await read_page(select(catalog, "monthly", None, NOW), cache, store, 1, cursor)
    with pytest.raises(InvalidInput):
        await read_page(select(catalog, "weekly", "2026-W47", NOW), cache, store, 1, cursor)


async def test_around_a_player_and_not_ranked(catalog, cache, store) -> None:  # type: ignore[no-untyped-def]
    ids = fill(cache, "daily", "2026-11-25", [90, 80, 70, 60, 50, 40])
    daily = select(catalog, "daily", None, NOW)
    around = await read_around(daily, cache, store, ids[3], 2)
    assert [(r.user_id, r.rank) for r in around.rows] == [(ids[i], i + 1) for i in range(1, 6)]
    assert around.user_id == ids[3] and around.total == 6
    with pytest.raises(NotRanked) as refused:
        await read_around(daily, cache, store, str(uuid.uuid4()), 2)
    assert refused.value.details["total"] == 6


async def test_a_public_profile_lists_the_current_boards_where_the_player_scored(
    catalog, store
) -> None:  # type: ignore[no-untyped-def]
    store.add("all-time", "all", ANN, 120, 5)
    store.add("weekly", "2026-W48", ANN, 20, 5)
    store.add("weekly", "2026-W47", ANN, 100, 5)  # a past week: not a current standing
    profile = await public_profile(catalog, store, ANN, NOW)
    assert profile["boards"] == [
        {"boardId": "all-time", "period": "all", "score": 120, "rank": 1},
        {"boardId": "weekly", "period": "2026-W48", "score": 20, "rank": 1},
    ]
    assert profile["recent"][0]["actionId"] == "quiz_1"
    with pytest.raises(UserNotFound):
        await public_profile(catalog, store, str(uuid.uuid4()), NOW)
    with pytest.raises(InvalidInput):
        check_user_id("not-a-uuid")
