"""Every board's current period in Redis: its top-10 message, pages and around-a-player.

The all-time board is the ranking cache of app/redis/ranking_cache.py (unchanged keys); every
other board keeps, per current period, the same keys under its own hash tag
(``Keys.board``). A node serves a board's top 10 from memory (``Boards``), else from the
message Redis holds for the current period, else from PostgreSQL. Redis failures never fail a
read: the database answers instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import ParamSpec, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.board import Boards, Snapshot
from app.core.board_reads import BoardCatalog, BoardNotFound
from app.core.boards import ALL_TIME, RowKey
from app.core.ports import RankedRow, RankedRun
from app.redis.health import RedisHealth
from app.redis.keys import Keys
from app.redis.scripts import BoardRead, Scripts

P = ParamSpec("P")
T = TypeVar("T")

# A board's top 10 read from PostgreSQL (Redis away or cold) is served this long before
# it is read again.
DB_TOP_SECONDS = 1.0
_REDIS_ERRORS = (RedisError, OSError)

DatabaseTop = Callable[[str, str], Awaitable[Snapshot]]  # (board id, period) -> its top 10
AllTimeSnapshot = Callable[[], Awaitable[Snapshot]]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class BoardCache:
    """The BoardRankings port on Redis (current periods; None when it cannot answer), and
    each board's current top 10."""

    def __init__(
        self,
        *,
        redis: Redis,
        scripts: Scripts,
        keys: Keys,
        boards: Boards,
        catalog: BoardCatalog,
        health: RedisHealth,
        all_time: AllTimeSnapshot,
        database_top: DatabaseTop,
        clock: Clock = utc_now,
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keys = keys
        self._boards = boards
        self._catalog = catalog
        self._health = health
        self._all_time = all_time
        self._database_top = database_top
        self._clock = clock
        self._db_tops: dict[tuple[str, str], tuple[float, Snapshot]] = {}

    def is_live(self, board_id: str) -> bool:
        """Whether ``board_id`` names a board counting now (one a live client may watch)."""
        board = self._catalog.get(board_id)
        return board is not None and board.current_period(self._clock()) is not None

    async def snapshot(self, board_id: str) -> Snapshot:
        """The board's current top 10: this node's copy when it is of the current period,
        else the message Redis holds for that period, else one read from PostgreSQL.
        BoardNotFound when no such board counts now."""
        if board_id == ALL_TIME:
            return await self._all_time()
        board = self._catalog.get(board_id)
        period = board.current_period(self._clock()) if board is not None else None
        if board is None or period is None:
            raise BoardNotFound(board_id)
        state = self._boards.get(board_id)
        if state.current is not None and state.current.period == period.id:
            return state.current
        message = await self._call(self._redis.get, self._keys.board(board_id, period.id).message)
        if message is not None:
            state.offer(message)
            if state.current is not None and state.current.period == period.id:
                return state.current
        return await self._from_database(board_id, period.id)

    # -- pages and around (BoardRankings) -----------------------------------------------------

    async def page(
        self, board_id: str, period: str, limit: int, after: RowKey | None
    ) -> RankedRun | None:
        cursor = (after.score, after.member) if after is not None else None
        read = await self._call(
            self._scripts.board_page, self._keys.board(board_id, period), limit, cursor
        )
        return None if read is None or read.cold else _run(read)

    async def around(
        self, board_id: str, period: str, user_id: str, radius: int
    ) -> RankedRun | None:
        read = await self._call(
            self._scripts.board_around, self._keys.board(board_id, period), user_id, radius
        )
        return None if read is None or read.cold else _run(read)

    async def _from_database(self, board_id: str, period: str) -> Snapshot:
        now = asyncio.get_running_loop().time()
        cached = self._db_tops.get((board_id, period))
        if cached is not None and now - cached[0] < DB_TOP_SECONDS:
            return cached[1]
        snapshot = await self._database_top(board_id, period)
        # Only the current period of each board is kept: the dict stays as small as the catalog.
        self._db_tops = {k: v for k, v in self._db_tops.items() if k[0] != board_id}
        self._db_tops[(board_id, period)] = (now, snapshot)
        return snapshot

    async def _call(
        self, function: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T | None:
        """Call Redis; on failure note the outage and return None (the caller falls back)."""
        if not self._health.available():
            self._health.fell_back()
            return None
        try:
            result = await function(*args, **kwargs)
        except _REDIS_ERRORS as error:
            self._health.failed(error, "board read")
            self._health.fell_back()
            return None
        self._health.succeeded()
        return result


def _run(read: BoardRead) -> RankedRun:
    rows = [
        RankedRow(user, name, score, rank, RowKey(score, reached, user))
        for user, reached, score, rank, name in read.rows
    ]
    return RankedRun(rows, read.total)
