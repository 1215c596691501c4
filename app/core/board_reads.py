"""Reading boards: pages, the rows around a player, archived periods, and public profiles.

The current period of a board is read from the ranking cache (Redis: O(log N) ranks) and, when
the cache cannot answer, from the database; any other period is read from the database, which
holds every period. The node's clock says which period is current; the database's clock said,
at each commit, where it counted. Around a boundary the two agree to within clock skew.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.core.board import Snapshot, message_from_users, snapshot_from_message
from app.core.boards import (
    ALL_PERIOD,
    ALL_TIME,
    BUILT_IN_BOARDS,
    Board,
    Cursor,
    Period,
    Window,
    decode_cursor,
)
from app.core.errors import DomainError, InvalidInput
from app.core.ports import BoardRankings, BoardStore, RankedRow, RankedRun
from app.core.ranking import TOP_N, iso

RECENT_COMPLETIONS = 20


class BoardNotFound(DomainError):
    code = "BOARD_NOT_FOUND"

    def __init__(self, board_id: str) -> None:
        super().__init__(f"There is no board {board_id[:40]!r}.", boardId=board_id[:40])


class NotRanked(DomainError):
    """The player has no points on this board in this period."""

    code = "NOT_RANKED"

    def __init__(self, user_id: str, total: int) -> None:
        super().__init__(
            "This player has no points on this board yet.", userId=user_id, total=total
        )


class UserNotFound(DomainError):
    code = "USER_NOT_FOUND"

    def __init__(self, user_id: str) -> None:
        super().__init__(f"There is no user {user_id[:40]!r}.", userId=user_id[:40])


def check_user_id(text: str) -> str:
    """A user id as the API names one (a UUID in its canonical form); InvalidInput if not."""
    try:
        return str(uuid.UUID(text)) if len(text) <= 36 else _bad_user_id()
    except ValueError:
        return _bad_user_id()


def _bad_user_id() -> str:
    raise InvalidInput("A user id is a UUID.", field="userId")


class BoardCatalog:
    """This node's copy of the board definitions (the ``boards`` table), refreshed like the
    action catalog; the built-in boards are known before the first refresh."""

    def __init__(self, boards: list[Board] | None = None) -> None:
        self._boards = {b.id: b for b in (boards or list(BUILT_IN_BOARDS))}

    def replace(self, boards: list[Board]) -> None:
        self._boards = {b.id: b for b in boards}

    def get(self, board_id: str) -> Board | None:
        return self._boards.get(board_id)

    def resolve(self, board_id: str | None) -> Board:
        """The board named (the all-time board when None); BoardNotFound otherwise."""
        wanted = ALL_TIME if board_id is None else board_id
        board = self._boards.get(wanted)
        if board is None:
            raise BoardNotFound(wanted)
        return board

    def all(self) -> list[Board]:
        return list(self._boards.values())

    def open_at(self, now: datetime) -> list[tuple[Board, Period]]:
        """Every board counting at ``now``, with its current period, in listing order."""
        found = []
        for board in self._boards.values():
            period = board.current_period(now)
            if period is not None:
                found.append((board, period))
        return found


@dataclass(frozen=True)
class Selection:
    """Which board and period a request reads, and whether that period is the current one."""

    board: Board
    period: Period
    current: bool


def select(
    catalog: BoardCatalog, board_id: str | None, period: str | None, now: datetime
) -> Selection:
    """Resolve ``?board=`` and ``?period=``: the current period unless one is named."""
    board = catalog.resolve(board_id)
    current = board.current_period(now)
    if period is None:
        if current is None:
            # A tournament that has ended (or not begun) still has its one period to read.
            if board.window is Window.TOURNAMENT:
                return Selection(board, board.parse_period(board.id), False)
            raise InvalidInput(
                f"Board {board.id!r} is not counting now; name a period.", field="period"
            )
        return Selection(board, current, True)
    named = board.parse_period(period)
    return Selection(board, named, current is not None and named.id == current.id)


@dataclass(frozen=True)
class BoardPage:
    board: str
    period: str
    rows: list[RankedRow]
    total: int
    next_cursor: str | None


@dataclass(frozen=True)
class Around:
    board: str
    period: str
    user_id: str
    rows: list[RankedRow]
    total: int


async def read_page(
    selection: Selection,
    cache: BoardRankings,
    store: BoardStore,
    limit: int,
    cursor: str | None,
) -> BoardPage:
    """One page: ``limit`` rows after the cursor (from the top without one)."""
    board, period = selection.board.id, selection.period.id
    after = decode_cursor(cursor, board, period).after if cursor is not None else None
    # One row more than asked says whether a next page exists (no cursor on the last page).
    # A current period comes from the cache when it can answer; any period from the database.
    run = await cache.page(board, period, limit + 1, after) if selection.current else None
    if run is None:
        run = await store.page(board, period, limit + 1, after)
    rows = run.rows[:limit]
    more = len(run.rows) > limit
    next_cursor = Cursor(board, period, rows[-1].key).encode() if more and rows else None
    return BoardPage(board, period, rows, run.total, next_cursor)


async def read_around(
    selection: Selection,
    cache: BoardRankings,
    store: BoardStore,
    user_id: str,
    radius: int,
) -> Around:
    """The player's row and up to ``radius`` neighbours on each side; NotRanked if none."""
    board, period = selection.board.id, selection.period.id
    run = await cache.around(board, period, user_id, radius) if selection.current else None
    if run is None:
        run = await store.around(board, period, user_id, radius)
    if not any(r.user_id == user_id for r in run.rows):
        raise NotRanked(user_id, run.total)
    return Around(board, period, user_id, run.rows, run.total)


def archived_top(selection: Selection, run: RankedRun) -> dict[str, Any]:
    """A past period's top 10 in the shape of ``GET /api/leaderboard?board=...``."""
    reached = [r.key.reached_at for r in run.rows]
    return {
        "users": [r.as_json() for r in run.rows],
        "updatedAt": iso(max(reached)) if reached else None,
        # Not a live message: version 0 of epoch "0", older than anything Redis publishes.
        "version": 0,
        "epoch": "0",
        "board": selection.board.id,
        "period": selection.period.id,
    }


# -- profiles -----------------------------------------------------------------------------------


def current_pairs(catalog: BoardCatalog, now: datetime) -> list[tuple[str, str]]:
    """(board id, current period) of every board counting now, the all-time board first."""
    pairs = [(b.id, p.id) for b, p in catalog.open_at(now)]
    pairs.sort(key=lambda pair: pair != (ALL_TIME, ALL_PERIOD))
    return pairs


async def board_standings(
    catalog: BoardCatalog, store: BoardStore, user_id: str, now: datetime
) -> list[dict[str, Any]]:
    """The player's score and rank on each board's current period where they have points."""
    return [
        {"boardId": s.board_id, "period": s.period, "score": s.score, "rank": s.rank}
        for s in await store.standings(user_id, current_pairs(catalog, now))
    ]


async def public_profile(
    catalog: BoardCatalog, store: BoardStore, user_id: str, now: datetime
) -> dict[str, Any]:
    """What anyone may see of a player: name, boards, and the last completions."""
    user = await store.public_user(check_user_id(user_id))
    if user is None:
        raise UserNotFound(user_id)
    return {
        "userId": user.user_id,
        "username": user.username,
        "createdAt": iso(user.created_at),
        "boards": await board_standings(catalog, store, user.user_id, now),
        "recent": [
            {
                "actionId": c.action_id,
                "name": c.name,
                "pointsEarned": c.points_earned,
                "completedAt": iso(c.completed_at),
            }
            for c in await store.recent(user.user_id, RECENT_COMPLETIONS)
        ],
    }


async def database_top(store: BoardStore, board_id: str, period: str) -> Snapshot:
    """A board's top 10 in a period as PostgreSQL holds it, as a message built here (epoch
    "0": any message Redis publishes replaces it)."""
    run = await store.page(board_id, period, TOP_N, None)
    reached = [r.key.reached_at for r in run.rows]
    return snapshot_from_message(
        message_from_users(
            [
                {"userId": r.user_id, "username": r.username, "score": r.score, "rank": r.rank}
                for r in run.rows
            ],
            iso(max(reached)) if reached else None,
            board_id,
            period,
        )
    )
