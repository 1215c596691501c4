"""The reconciler: makes the Redis ranking equal PostgreSQL again, and says what it repaired.

PostgreSQL is the source of truth; applies to Redis can be lost (a process killed between
commit and apply, an outage, an operator's mistake). Two passes, both in bounded memory
(a server-side cursor read in batches, each batch compared and repaired by one Lua call):

- **incremental**: users whose ``updated_at`` is at or after the last pass's start, less a
  margin; each is upserted exactly as the apply script would (a newer standing already in
  Redis is never undone). A cold ranking (version counter gone: Redis lost its data) turns
  it into a full pass.
- **full**: every ranked user is written under staging keys, which are renamed over the live
  keys in one atomic step that also publishes the top 10 under a new epoch; then every user
  changed since the scan began is re-applied, so updates that landed on the old keys during
  the scan are not lost. Users ranked in Redis but not in the database are thereby dropped.
  This is also how a cold Redis is seeded: there is no other path from PostgreSQL to Redis.

Watermarks come from the database clock, never this node's, so clock skew cannot skip rows.
The caller holds the reconcile lock (app/redis/lock.py) for the whole pass.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
from redis.asyncio import Redis

from app.core.board_reads import BoardCatalog
from app.core.boards import ALL_PERIOD, ALL_TIME
from app.core.ranking import iso, ranking_member
from app.redis.keys import BoardKeys, Keys
from app.redis.lock import LockLost, ReconcileLock
from app.redis.ranking_cache import expire_at_ms
from app.redis.scripts import BatchDrift, BatchMode, Scripts, Standing

BATCH = 1000
# Re-read rows from this long before a watermark: a commit's updated_at is taken a moment
# before it becomes visible, so a row can appear in the database slightly "in the past".
SAFETY_MARGIN = timedelta(seconds=30)
# A crashed rebuild's staging keys expire by themselves after this long.
STAGE_TTL_SECONDS = 3600

Progress = Callable[[int, int], None]  # (users scanned so far, users to scan)

# A banned player is in no ranking: read as unranked (score 0), so a pass takes them out.
_USERS_SINCE_SQL = """
SELECT id::text AS user_id, username,
       CASE WHEN banned_at IS NULL THEN score ELSE 0 END AS score, reached_at
  FROM users
 WHERE updated_at >= $1
"""
_RANKED_USERS_SQL = """
SELECT id::text AS user_id, username, score, reached_at
  FROM users
 WHERE score > 0 AND banned_at IS NULL
"""


@dataclass
class Drift:
    missing: int = 0  # ranked in the database, absent from Redis
    wrong: int = 0  # in Redis with a wrong score, reach time or name
    extra: int = 0  # in Redis, but not ranked in the database
    newer: int = 0  # Redis already held a later standing (committed during the pass)
    accounted: int = 0  # users whose Redis member is in the ranking

    def add(self, batch: BatchDrift) -> None:
        self.missing += batch.missing
        self.wrong += batch.wrong
        self.extra += batch.extra
        self.accounted += batch.accounted
        self.newer += batch.newer

    @property
    def total(self) -> int:
        return self.missing + self.wrong + self.extra


@dataclass
class ReconcileReport:
    mode: str  # "incremental" or "full"
    dry_run: bool
    since: datetime | None  # the incremental pass's lower bound (None: every user)
    scanned: int = 0
    drift: Drift = field(default_factory=Drift)
    reapplied: int = 0  # users re-applied after the swap (changed while the full scan ran)
    published: bool = False  # a new top 10 was published
    duration_seconds: float = 0.0
    reason: str = ""  # why a pass was escalated to full, if it was
    board: str = ALL_TIME
    period: str = ALL_PERIOD
    # The same pass over every other board's current period.
    boards: list[ReconcileReport] = field(default_factory=list)

    @property
    def fixed(self) -> int:
        return 0 if self.dry_run else self.drift.total

    def summary(self) -> str:
        d = self.drift
        verb = "would fix" if self.dry_run else "fixed"
        lines = [
            f"reconcile {self.mode}{' (dry run)' if self.dry_run else ''}"
            + (f": {self.reason}" if self.reason else ""),
            f"  scanned   {self.scanned} users"
            + (f" changed since {iso(self.since)}" if self.since else ""),
            f"  missing   {d.missing}",
            f"  wrong     {d.wrong}",
            f"  extra     {d.extra}",
            f"  {verb:<9} {d.total}",
        ]
        if d.newer:
            lines.append(f"  skipped   {d.newer} (updated while the pass ran: already newer)")
        if self.reapplied:
            lines.append(f"  reapplied {self.reapplied} (changed during the full scan)")
        lines.append(f"  published {'a new top 10' if self.published else 'nothing (unchanged)'}")
        lines.append(f"  duration  {self.duration_seconds:.2f} s")
        for sub in self.boards:
            d = sub.drift
            lines.append(
                f"  board {sub.board} {sub.period}: {sub.mode}, scanned {sub.scanned}, "
                f"missing {d.missing}, wrong {d.wrong}, extra {d.extra}"
                + (f" ({sub.reason})" if sub.reason else "")
            )
        return "\n".join(lines)

    def as_json(self) -> dict[str, object]:
        out = asdict(self)
        out["since"] = iso(self.since) if self.since else None
        out["fixed"] = self.fixed
        out["boards"] = [sub.as_json() for sub in self.boards]
        return out


@dataclass(frozen=True)
class Target:
    """One ranking to reconcile: a board in its current period, its keys, and the SQL that
    reads its standings (all of them; or those changed since ``$n``, the last parameter)."""

    keys: BoardKeys
    every_sql: str
    since_sql: str
    args: tuple[str, ...] = ()
    expire_at_ms: int = 0

    @property
    def name(self) -> str:
        return f"{self.keys.board}:{self.keys.period}"

    @property
    def is_all_time(self) -> bool:
        return self.keys.board == ALL_TIME


def board_target(keys: Keys, board_id: str, period: str, ends_at: datetime | None) -> Target:
    """A board other than all time in one period: its rows of ``board_scores``."""
    return Target(
        keys.board(board_id, period),
        _BOARD_STANDINGS_SQL,
        _BOARD_STANDINGS_SINCE_SQL,
        (board_id, period),
        expire_at_ms(ends_at),
    )


_BOARD_STANDINGS_SQL = """
SELECT s.user_id::text AS user_id, u.username, s.score, s.reached_at
  FROM board_scores s JOIN users u ON u.id = s.user_id
 WHERE s.board_id = $1 AND s.period = $2 AND u.banned_at IS NULL
"""
# Rows changed since $3; and, as unranked (score 0, as of the user's latest change), every
# user changed since who has no row here or is banned: a correction that deleted their row
# or a ban leaves nothing in board_scores for the pass to find otherwise.
_BOARD_STANDINGS_SINCE_SQL = """
SELECT s.user_id::text AS user_id, u.username, s.score, s.reached_at
  FROM board_scores s JOIN users u ON u.id = s.user_id
 WHERE s.board_id = $1 AND s.period = $2 AND s.updated_at >= $3 AND u.banned_at IS NULL
UNION ALL
SELECT u.id::text, u.username, 0, u.reached_at
  FROM users u
 WHERE u.updated_at >= $3
   AND (u.banned_at IS NOT NULL
        OR NOT EXISTS (SELECT FROM board_scores s
                        WHERE s.board_id = $1 AND s.period = $2 AND s.user_id = u.id))
"""

Clock = Callable[[], datetime]


class Reconciler:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        redis: Redis,
        keys: Keys,
        scripts: Scripts,
        lock: ReconcileLock,
        batch_size: int = BATCH,
        progress: Progress | None = None,
        catalog: BoardCatalog | None = None,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self._lock = lock
        self._batch_size = batch_size
        self._progress = progress
        self._catalog = catalog
        self._clock = clock
        self._all_time = Target(keys.all_time, _RANKED_USERS_SQL, _USERS_SINCE_SQL)

    def targets(self) -> list[Target]:
        """Every other board's current period (by this node's clock), from the catalog."""
        if self._catalog is None:
            return []
        return [
            board_target(self._keys, board.id, period.id, period.ends_at)
            for board, period in self._catalog.open_at(self._clock())
            if not board.is_all_time
        ]

    async def run(self, *, full: bool = False, dry_run: bool = False) -> ReconcileReport:
        """One pass over the all-time ranking, then over every other board's current period
        (in ``report.boards``); the caller must hold the reconcile lock (``LockLost`` if it
        goes)."""
        report = await self.run_target(self._all_time, full=full, dry_run=dry_run)
        for target in self.targets():
            report.boards.append(await self.run_target(target, full=full, dry_run=dry_run))
        return report

    async def run_target(
        self, target: Target, *, full: bool = False, dry_run: bool = False
    ) -> ReconcileReport:
        started = time.monotonic()
        cold = not await self._redis.exists(target.keys.version)
        if full or (cold and not dry_run):
            report = await self._full(target, dry_run)
            if cold and not full:
                report.reason = "the ranking was cold (Redis lost its data)"
        else:
            report = await self._incremental(target, dry_run)
        report.board, report.period = target.keys.board, target.keys.period
        report.duration_seconds = time.monotonic() - started
        return report

    # -- passes ---------------------------------------------------------------------------------

    async def _incremental(self, target: Target, dry_run: bool) -> ReconcileReport:
        watermark = await self._watermark(target)
        since = watermark - SAFETY_MARGIN if watermark else None
        report = ReconcileReport("incremental", dry_run, since)
        scan_began = await self._compare(target, report, since, "check" if dry_run else "fix")
        if not dry_run:
            report.published = await self._publish_if_changed(target)
            await self._redis.set(self._watermark_key(target), iso(scan_began))
        return report

    async def _full(self, target: Target, dry_run: bool) -> ReconcileReport:
        report = ReconcileReport("full", dry_run, None)
        keys = target.keys
        if dry_run:
            await self._compare(target, report, None, "check")
            live = int(await self._redis.zcard(keys.ranking))
            report.drift.extra += max(0, live - report.drift.accounted)
            return report

        # UNLINK: a crashed rebuild's staging set can be large; freeing it must not block Redis.
        await self._redis.unlink(*keys.rebuild_keys())
        scan_began = await self._compare(target, report, None, "stage")
        self._check_lock()
        token = self._lock.token or ""
        board = None if target.is_all_time else keys
        if board is not None:
            # The swap checks the lock in its own slot: a copy of this pass's token there.
            await self._redis.set(keys.rebuild_lock, token, px=STAGE_TTL_SECONDS * 1000)
        try:
            swapped = await self._scripts.reconcile_swap(
                token, iso(datetime.now(UTC)), board=board, expire_at_ms=target.expire_at_ms
            )
        finally:
            if board is not None:
                await self._redis.delete(keys.rebuild_lock)
        if swapped is None:
            raise LockLost("the reconcile lock was lost before the swap; nothing was changed")
        report.drift.extra += max(0, swapped.replaced - report.drift.accounted)
        report.published = True

        # Updates that landed on the old keys while we scanned were renamed away: re-apply
        # every user the database changed since the scan began (idempotent upserts).
        again = ReconcileReport("incremental", False, scan_began - SAFETY_MARGIN)
        await self._compare(target, again, again.since, "fix")
        report.reapplied = again.drift.total
        await self._publish_if_changed(target)
        await self._redis.set(self._watermark_key(target), iso(scan_began))
        return report

    # -- pieces ---------------------------------------------------------------------------------

    async def _compare(
        self,
        target: Target,
        report: ReconcileReport,
        since: datetime | None,
        mode: BatchMode,
    ) -> datetime:
        """Run every batch of standings (changed since ``since``, else every ranked one)
        through the batch script; returns when the scan began (database time, taken with the
        snapshot the scan reads)."""
        sql, args = (
            (target.every_sql, target.args)
            if since is None
            else (target.since_sql, (*target.args, since))
        )
        board = None if target.is_all_time else target.keys
        async with self._pool.acquire() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                # The first statement fixes the snapshot: the time it reads is when the scan
                # began, so later commits are exactly those the re-apply must cover.
                scan_began: datetime = await conn.fetchval("SELECT clock_timestamp()")
                query = f"SELECT count(*) FROM ({sql}) AS scanned"  # noqa: S608 - our constants
                total = int(await conn.fetchval(query, *args))
                async for batch in self._batches(conn, sql, args):
                    self._check_lock()
                    report.drift.add(
                        await self._scripts.reconcile_batch(
                            mode, batch, STAGE_TTL_SECONDS, board=board
                        )
                    )
                    report.scanned += len(batch)
                    if self._progress is not None:
                        self._progress(report.scanned, total)
        return scan_began

    async def _batches(
        self, conn: asyncpg.Connection, sql: str, args: tuple[object, ...]
    ) -> AsyncIterator[list[Standing]]:
        batch: list[Standing] = []
        async for row in conn.cursor(sql, *args, prefetch=self._batch_size):
            user_id = row["user_id"]
            member = ranking_member(user_id, row["reached_at"])
            batch.append(Standing(user_id, row["username"], row["score"], member))
            if len(batch) >= self._batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    async def _publish_if_changed(self, target: Target) -> bool:
        board = None if target.is_all_time else target.keys
        result = await self._scripts.publish_top10(
            iso(datetime.now(UTC)), board=board, expire_at_ms=target.expire_at_ms
        )
        return result.top_changed

    def _watermark_key(self, target: Target) -> str:
        # The all-time board keeps the key it always had.
        if target.is_all_time:
            return self._keys.reconcile_watermark
        return target.keys.reconcile_watermark

    async def _watermark(self, target: Target) -> datetime | None:
        raw = await self._redis.get(self._watermark_key(target))
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else raw
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    def _check_lock(self) -> None:
        if self._lock.lost.is_set():
            raise LockLost("the reconcile lock was lost during the pass; stopped")
