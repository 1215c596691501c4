"""The ranking cache in Redis, and the read path (memory, then Redis, then PostgreSQL).

Redis failures never fail a request here: an apply that cannot reach Redis returns None (the
caller falls back to the database). Nor does a request ever rebuild the ranking: a cold one
(Redis lost its data) is answered like an outage while the cache asks the reconcile job
(app/repair/job.py) to rebuild it in the background; the only path from PostgreSQL to Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.board import Board, Boards, Snapshot, message_from_users, snapshot_from_message
from app.core.ports import RestoredStanding, StandingsStore
from app.core.ranking import TOP_N, iso, ranking_member, shared_ranks
from app.redis.health import RedisHealth
from app.redis.keys import Keys
from app.redis.scripts import ApplyResult, BoardApply, Scripts, Standing

if TYPE_CHECKING:
    from app.core.scoring import Committed

P = ParamSpec("P")
T = TypeVar("T")

# A board read from PostgreSQL while Redis is away is served for this long before re-reading.
DB_BOARD_SECONDS = 1.0

_REDIS_ERRORS = (RedisError, OSError)

ColdListener = Callable[[], None]


def standing_of(user_id: str, username: str, score: int, reached_at: datetime) -> Standing:
    return Standing(user_id, username, score, ranking_member(user_id, reached_at))


class LeaderboardCache:
    def __init__(
        self,
        *,
        redis: Redis,
        scripts: Scripts,
        keys: Keys,
        standings: StandingsStore,
        board: Board,
        health: RedisHealth,
        boards: Boards | None = None,
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keys = keys
        self._standings = standings
        self._board = board
        self._health = health
        self._db_board: tuple[float, Snapshot] | None = None
        self._cold_listeners: list[ColdListener] = []
        self._board_cold_listeners: list[ColdListener] = []
        self._boards = boards or Boards(board)

    def on_cold(self, listener: ColdListener) -> None:
        """Call ``listener`` (at once, without awaiting) whenever a call finds the ranking
        cold; the reconcile job's ``kick`` is one."""
        self._cold_listeners.append(listener)

    def on_board_cold(self, listener: ColdListener) -> None:
        """Call ``listener`` when an apply finds another board's current period cold (not yet
        started, or lost): the rollover task (app/repair/rollover.py) starts it."""
        self._board_cold_listeners.append(listener)

    # -- write path -------------------------------------------------------------------------

    async def apply(self, committed: Committed) -> ApplyResult | None:
        """Write a committed score into the ranking, and the user's score on every other board
        the commit counted on into that board's current period, in one round trip. The
        all-time result answers; None when Redis cannot be reached or the all-time ranking is
        cold: the caller then ranks from PostgreSQL, as in an outage."""
        applies = self._applies(committed)
        results = await self._call(self._scripts.apply_scores, applies, iso(committed.reached_at))
        return None if results is None else self._taken(results)

    async def apply_many(self, commits: list[Committed]) -> list[ApplyResult | None]:
        """``apply`` of several commits in ONE round trip (app/redis/group_apply.py)."""
        calls = [(self._applies(c), iso(c.reached_at)) for c in commits]
        replies = await self._call(self._scripts.apply_scores_of_many, calls)
        if replies is None:
            return [None] * len(commits)
        out: list[ApplyResult | None] = []
        for reply in replies:
            if isinstance(reply, Exception):
                self._health.failed(reply, "leaderboard update")
                self._health.fell_back()
                out.append(None)
            else:
                out.append(self._taken(reply))
        return out

    def _applies(self, committed: Committed) -> list[BoardApply]:
        member = ranking_member(committed.user_id, committed.reached_at)
        return [
            BoardApply(
                self._keys.all_time,
                Standing(committed.user_id, committed.username, committed.score, member),
            )
        ] + [
            BoardApply(
                self._keys.board(b.board_id, b.period),
                Standing(committed.user_id, committed.username, b.score, member),
                expire_at_ms(b.ends_at),
            )
            for b in committed.boards
        ]

    def _taken(self, results: list[ApplyResult]) -> ApplyResult | None:
        """Take what the apply published; the all-time result (None: cold)."""
        for other in results[1:]:
            if other.message:
                self._boards.offer(other.message)
            elif other.cold:
                self._found_board_cold()
        result: ApplyResult | None = results[0]
        if result is not None and result.cold:
            # Nothing was published from the cold ranking. Rebuilding it reads every user, so
            # it is the reconcile job's work, never this request's.
            self._found_cold()
            self._health.fell_back()
            return None
        if result is not None and result.message:
            # The publish reaches this node through its subscription too; taking it now means
            # a GET right after this response already shows the change.
            self._board.offer(result.message)
        return result

    async def remove_user(
        self, user_id: str, periods: list[tuple[str, str]], *, all_time: bool = True
    ) -> bool:
        """Take the user out of the all-time ranking (unless ``all_time`` is False) and out of
        each (board, period) given, publishing each top 10 that changes (a ban). False when
        Redis could not be reached: the reconciler, which skips banned users, then finishes
        the job."""
        updated_at = iso(datetime.now(UTC))
        targets = [self._keys.all_time] if all_time else []
        targets += [self._keys.board(b, p) for b, p in periods]
        for keys in targets:
            result = await self._call(self._scripts.remove_user, user_id, updated_at, keys)
            if result is None:
                return False
            if result.message:
                self._boards.offer(result.message)
        return True

    async def restore_user(self, standings: list[RestoredStanding]) -> bool:
        """Write a user's standings as PostgreSQL holds them, each with its own reach time
        (an unban), publishing each top 10 that changes; False when Redis is away."""
        applies = [
            BoardApply(
                self._keys.board(s.board_id, s.period),
                standing_of(s.user_id, s.username, s.score, s.reached_at),
                expire_at_ms(s.ends_at),
            )
            for s in standings
        ]
        if not applies:
            return True
        results = await self._call(self._scripts.apply_scores, applies, iso(datetime.now(UTC)))
        if results is None:
            return False
        for result in results:
            if result.message:
                self._boards.offer(result.message)
        return True

    # -- read path --------------------------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        """The current board: this node's copy, else Redis's, else one read from PostgreSQL."""
        if self._board.current is not None:
            return self._board.current
        if await self._adopt_latest() or await self._publish_current():
            assert self._board.current is not None
            return self._board.current
        return await self._board_from_database()

    async def _adopt_latest(self) -> bool:
        message = await self._call(self._redis.get, self._keys.message)
        if message is None:
            return False
        self._board.offer(message)
        return True

    async def _publish_current(self) -> bool:
        """Have Redis publish the top 10 it holds, unless the ranking is cold."""
        result = await self._call(self._scripts.publish_top10, iso(datetime.now(UTC)))
        if result is None:
            return False
        if result.cold:
            self._found_cold()
            return False
        return await self._adopt_latest()

    async def _board_from_database(self) -> Snapshot:
        now = asyncio.get_running_loop().time()
        if self._db_board is not None and now - self._db_board[0] < DB_BOARD_SECONDS:
            return self._db_board[1]
        rows = await self._standings.top(TOP_N)
        users = [
            e.as_json() for e in shared_ranks([(r.user_id, r.username, r.score) for r in rows])
        ]
        updated = max((r.reached_at for r in rows), default=None)
        snapshot = snapshot_from_message(
            message_from_users(users, iso(updated) if updated else None)
        )
        self._db_board = (now, snapshot)
        return snapshot

    # -- Redis calls --------------------------------------------------------------------------

    async def _call(
        self, function: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T | None:
        """Call Redis; on failure note the outage and return None."""
        if not self._health.available():
            self._health.fell_back()
            return None
        try:
            result = await function(*args, **kwargs)
        except _REDIS_ERRORS as error:
            self._health.failed(error, "leaderboard update")
            self._health.fell_back()
            return None
        self._health.succeeded()
        return result

    def _found_cold(self) -> None:
        for listener in list(self._cold_listeners):
            listener()

    def _found_board_cold(self) -> None:
        for listener in list(self._board_cold_listeners):
            listener()


# A period's keys are kept this long after it ends: a node whose clock is a little behind,
# or an apply in flight at the boundary, still finds them. After that it is read from
# PostgreSQL like any past period.
PERIOD_KEYS_GRACE = timedelta(minutes=5)


def expire_at_ms(ends_at: datetime | None) -> int:
    """When a period's keys expire, in ms since the epoch (0: never, for an unbounded one)."""
    if ends_at is None:
        return 0
    return int((ends_at + PERIOD_KEYS_GRACE).timestamp() * 1000)
