"""The ranking cache in Redis, and the read path (memory, then Redis, then PostgreSQL).

Redis failures never fail a request here: an apply that cannot reach Redis returns None (the
caller falls back to the database), and the cache is repaired when Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.board import Board, Snapshot, message_from_users, snapshot_from_message
from app.core.ranking import iso, ranking_member, shared_ranks
from app.db.standings import top_rows
from app.redis.health import RedisHealth
from app.redis.keys import Keys
from app.redis.scripts import ApplyResult, Scripts, Standing

if TYPE_CHECKING:
    from app.core.scoring import Committed

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

SEED_BATCH = 1000
# Applies lost while Redis was away are re-read from this far before the outage began, to
# cover clock differences between this node and the database.
CATCH_UP_MARGIN = timedelta(seconds=30)
# A board read from PostgreSQL while Redis is away is served for this long before re-reading.
DB_BOARD_SECONDS = 1.0

_REDIS_ERRORS = (RedisError, OSError)

STANDINGS_SQL = """
SELECT id::text AS user_id, username, score, reached_at
  FROM users
 WHERE score > 0 AND updated_at >= $1
 ORDER BY updated_at, id
"""


def standing_of(user_id: str, username: str, score: int, reached_at: datetime) -> Standing:
    return Standing(user_id, username, score, ranking_member(user_id, reached_at))


class LeaderboardCache:
    def __init__(
        self,
        *,
        redis: Redis,
        scripts: Scripts,
        keys: Keys,
        pool: asyncpg.Pool,
        read_pool: asyncpg.Pool,
        board: Board,
        health: RedisHealth,
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keys = keys
        self._pool = pool
        self._read_pool = read_pool
        self._board = board
        self._health = health
        self._seed_lock = asyncio.Lock()
        self._db_board: tuple[float, Snapshot] | None = None
        self._background: set[asyncio.Task[None]] = set()
        health.on_recovery(lambda since: self._spawn(self._catch_up_logged(since)))

    # -- write path -------------------------------------------------------------------------

    async def apply(self, committed: Committed) -> ApplyResult | None:
        """Write a committed score into the ranking; None when Redis cannot be reached."""
        standing = standing_of(
            committed.user_id, committed.username, committed.score, committed.reached_at
        )
        result = await self._call(self._scripts.apply_score, standing, iso(committed.reached_at))
        if result is not None and result.cold:
            # Nothing was published from the cold ranking. Seeding publishes the full board
            # under a new epoch; applying again (a no-op by now) gives the settled rank.
            before = result
            if not await self.seed():
                return None
            result = await self._call(
                self._scripts.apply_score, standing, iso(committed.reached_at)
            )
            if result is not None:
                result = replace(result, previous_rank=before.previous_rank, top_changed=True)
        if result is not None and result.message:
            # The publish reaches this node through its subscription too; taking it now means
            # a GET right after this response already shows the change.
            self._board.offer(result.message)
        elif result is not None and result.top_changed:
            await self._adopt_latest()  # published by the seed, not by this call
        return result

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
        """Have Redis publish the top 10 it holds (seeding it first when it is cold)."""
        result = await self._call(self._scripts.publish_top10, [], iso(datetime.now(UTC)))
        if result is not None and result.cold:
            await self.seed()
        return await self._adopt_latest()

    async def _board_from_database(self) -> Snapshot:
        now = asyncio.get_running_loop().time()
        if self._db_board is not None and now - self._db_board[0] < DB_BOARD_SECONDS:
            return self._db_board[1]
        rows = await top_rows(self._read_pool)
        users = [
            e.as_json()
            for e in shared_ranks([(r["user_id"], r["username"], r["score"]) for r in rows])
        ]
        updated = max((r["reached_at"] for r in rows), default=None)
        snapshot = snapshot_from_message(
            message_from_users(users, iso(updated) if updated else None)
        )
        self._db_board = (now, snapshot)
        return snapshot

    # -- repair -----------------------------------------------------------------------------

    async def seed(self) -> bool:
        """Load every ranked user from PostgreSQL into a cold ranking, then publish it under a
        new epoch. Returns False when Redis failed meanwhile."""
        async with self._seed_lock:
            probe = await self._call(self._redis.exists, self._keys.version)
            if probe is None:
                return False
            if probe:
                return True  # another request (or node) seeded it while we waited
            started = datetime.now(UTC)
            count = 0
            # Batches only upsert (the ranking stays cold, so nothing partial is published);
            # the last call starts the new epoch and publishes the complete top 10.
            async for batch in self._standings_since(datetime.min.replace(tzinfo=UTC)):
                if await self._call(self._scripts.publish_top10, batch, iso(started)) is None:
                    return False
                count += len(batch)
            done = await self._call(self._scripts.publish_top10, [], iso(started), True)
            log.info("seeded the ranking from PostgreSQL: %d users", count)
            return done is not None

    async def catch_up(self, since: datetime) -> int:
        """Re-apply every user changed since ``since`` (idempotent); returns how many."""
        count = 0
        async for batch in self._standings_since(since):
            result = await self._call(self._scripts.publish_top10, batch, iso(datetime.now(UTC)))
            if result is None:
                break
            if result.cold:
                await self.seed()
                break
            count += len(batch)
        if count:
            await self._adopt_latest()
        return count

    async def _standings_since(self, since: datetime) -> AsyncIterator[list[Standing]]:
        async with self._pool.acquire() as conn, conn.transaction(readonly=True):
            cursor = conn.cursor(STANDINGS_SQL, since, prefetch=SEED_BATCH)
            batch: list[Standing] = []
            async for row in cursor:
                batch.append(
                    standing_of(row["user_id"], row["username"], row["score"], row["reached_at"])
                )
                if len(batch) >= SEED_BATCH:
                    yield batch
                    batch = []
            if batch:
                yield batch

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

    async def _catch_up_logged(self, outage_began: datetime) -> None:
        # Applies that failed during the outage are in PostgreSQL only: re-apply them.
        count = await self.catch_up(outage_began - CATCH_UP_MARGIN)
        log.info("re-applied %d users changed while redis was away", count)

    def _spawn(self, coroutine: Coroutine[None, None, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
