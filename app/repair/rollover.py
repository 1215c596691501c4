"""Rollover: when a period ends, each board starts empty in the next one, everywhere at once.

Every node runs ``Rollover.tick`` twice a second. For each board counting now it compares the
period the node shows with the current one (by this node's clock, UTC). When they differ:

- if Redis holds the new period's message, another node started it: take it;
- else the first node to set the period's ``started`` key (``SET NX``, so exactly one node in
  the cluster) reads the period's rows from PostgreSQL (none, or the few committed in the
  first instants), writes them, and publishes the period's top 10 under a new epoch. Every
  node's subscription delivers it to its live clients, so readers and sockets see the new
  period within a tick or two of the boundary, with no request needed.

The same path starts a board whose period Redis lost (it has rows then) and a tournament that
has just begun. A node that claimed a period and died before publishing holds it for
``STARTED_TTL_MS`` only; another node then starts it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.board import Boards
from app.core.board_reads import BoardCatalog
from app.core.boards import Board, Period
from app.core.periodic import Periodic
from app.core.ranking import iso, ranking_member
from app.db import boards as db_boards
from app.redis.keys import BoardKeys, Keys
from app.redis.ranking_cache import expire_at_ms
from app.redis.scripts import Scripts, Standing

log = logging.getLogger(__name__)

TICK_SECONDS = 0.5
STARTED_TTL_MS = 10_000
# Every so many ticks each board's stored message is read again, in case a published one
# was missed (a subscription that was down); versions make a re-read harmless.
REFRESH_EVERY_TICKS = 20
SEED_BATCH = 1000
# A seeded period's staging-free writes never outlive the period; this only bounds a crashed
# seed's leftovers (reconcile_batch's staging argument; nothing is staged in "fix" mode).
_STAGE_TTL_SECONDS = 3600
_SINCE_EVER = datetime(1970, 1, 1, tzinfo=UTC)

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Rollover:
    def __init__(
        self,
        *,
        redis: Redis,
        scripts: Scripts,
        keys: Keys,
        pool: asyncpg.Pool,
        catalog: BoardCatalog,
        boards: Boards,
        node_id: str,
        clock: Clock = _utc_now,
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keys = keys
        self._pool = pool
        self._catalog = catalog
        self._boards = boards
        self._node_id = node_id
        self._clock = clock
        self._periodic = Periodic()
        self._ticks = 0
        self._kicked: asyncio.Future[None] | None = None
        self.started: list[tuple[str, str]] = []  # (board, period) this node started

    def start(self) -> None:
        self._periodic.every(TICK_SECONDS, self._tick_quietly, name="board-rollover")

    def kick(self) -> None:
        """Tick now rather than at the next interval (an apply found a period cold)."""
        if self._kicked is None or self._kicked.done():
            self._kicked = asyncio.ensure_future(self._tick_quietly())

    async def stop(self) -> None:
        if self._kicked is not None:
            self._kicked.cancel()
            await asyncio.gather(self._kicked, return_exceptions=True)
        await self._periodic.stop()

    async def _tick_quietly(self) -> None:
        try:
            await self.tick()
        except (RedisError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            # Redis or the database is away: the health checks say so; the next tick retries.
            log.debug("board rollover tick failed: %r", error)

    async def tick(self) -> None:
        """Bring every board this node shows to its current period."""
        self._ticks += 1
        refresh = self._ticks % REFRESH_EVERY_TICKS == 0
        for board, period in self._catalog.open_at(self._clock()):
            if board.is_all_time:
                continue  # one period for ever: the reconcile job keeps it
            shown = self._boards.get(board.id).current
            if shown is not None and shown.period == period.id and not refresh:
                continue
            await self._ensure(board, period)

    async def _ensure(self, board: Board, period: Period) -> None:
        keys = self._keys.board(board.id, period.id)
        message = await self._redis.get(keys.message)
        if message is not None:
            self._boards.offer(message)
            return
        if not await self._redis.set(keys.started, self._node_id, nx=True, px=STARTED_TTL_MS):
            return  # another node is starting it; its publish reaches us
        count = await self._seed(board, period, keys)
        log.info("started board %s period %s (%d players already)", board.id, period.id, count)
        self.started.append((board.id, period.id))
        stored = await self._redis.get(keys.message)
        if stored is not None:
            self._boards.offer(stored)

    async def _seed(self, board: Board, period: Period, keys: BoardKeys) -> int:
        """Write the period's rows from PostgreSQL, then publish its top 10 under a new epoch.
        Applies that land meanwhile write their own rows (a cold ranking publishes nothing),
        so the published top 10 holds both."""
        count = 0
        expire = expire_at_ms(period.ends_at)
        async for batch in self._standings(board.id, period.id):
            await self._scripts.reconcile_batch("fix", batch, _STAGE_TTL_SECONDS, board=keys)
            count += len(batch)
        await self._scripts.publish_top10(
            iso(self._clock()), new_epoch=True, board=keys, expire_at_ms=expire
        )
        return count

    async def _standings(self, board_id: str, period: str) -> AsyncIterator[list[Standing]]:
        sql = db_boards.STANDINGS_SQL.of(board_id)
        async with self._pool.acquire() as conn, conn.transaction(readonly=True):
            batch: list[Standing] = []
            async for row in conn.cursor(sql, board_id, period, _SINCE_EVER, prefetch=SEED_BATCH):
                member = ranking_member(row["user_id"], row["reached_at"])
                batch.append(Standing(row["user_id"], row["username"], row["score"], member))
                if len(batch) >= SEED_BATCH:
                    yield batch
                    batch = []
            if batch:
                yield batch
