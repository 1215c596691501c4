"""The reconcile job inside the service: every node tries, one at a time succeeds.

Each node runs a pass when it starts, then every ``RECONCILE_INTERVAL_SECONDS`` (with jitter, so
nodes started together do not collide every time), and at once when kicked: a request found the
ranking cold (Redis lost its data: the pass is a full rebuild) or Redis came back after an
outage (an incremental pass re-applies what was committed meanwhile). A pass runs only under
the reconcile lock. A failed pass is logged and counted; the loop keeps going until ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.board_reads import BoardCatalog
from app.obs.metrics import Metrics
from app.redis.keys import Keys
from app.redis.lock import LockLost, ReconcileLock
from app.redis.scripts import Scripts
from app.repair.reconcile import Reconciler, ReconcileReport

log = logging.getLogger(__name__)

_JITTER = 0.2
# After a kicked attempt that found the lock taken (another node is repairing) or failed, try
# again this soon rather than a whole interval later; not sooner, so kicks cannot make it spin.
KICK_RETRY_SECONDS = 1.0


class ReconcileJob:
    def __init__(
        self, reconciler: Reconciler, lock: ReconcileLock, metrics: Metrics, interval: float
    ) -> None:
        self._reconciler = reconciler
        self._lock = lock
        self._metrics = metrics
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._kicked = asyncio.Event()
        self._stopping = False
        self._attempted = asyncio.Event()  # the first attempt since start has ended

    def kick(self) -> None:
        """Run a pass as soon as possible instead of at the next tick (cheap, never blocks:
        every request that finds the ranking cold may call it)."""
        self._kicked.set()

    def start(self) -> None:
        """Start the loop; its first pass begins at once."""
        self._kicked.set()
        self._task = asyncio.create_task(self._forever(), name="reconcile-job")

    async def first_attempt(self, at_most: float) -> None:
        """Wait, at most ``at_most`` seconds, for the first attempt since ``start`` to end (a
        node that starts on a cold Redis then serves from a rebuilt ranking at once)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most):
                await self._attempted.wait()

    async def stop(self) -> None:
        """Stop the loop; a pass in progress is cancelled and its lock released (the lock's
        context does that), so another node can take over at once."""
        if self._task is not None:
            # The flag ends the loop even where Python 3.11 swallows the cancellation (a
            # timeout expiring as it lands); the kick wakes a loop that is waiting.
            self._stopping = True
            self._kicked.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> ReconcileReport | None:
        """One attempt: None when another node holds the lock or the pass failed."""
        try:
            async with self._lock.held() as got:
                if not got:
                    return None
                report = await self._reconciler.run()
        except (RedisError, OSError, asyncpg.PostgresError, LockLost) as error:
            log.warning("reconcile pass failed: %s", error)
            self._metrics.reconcile_runs.labels("unknown", "failed").inc()
            return None
        self.record(self._metrics, report)
        if report.drift.total or any(sub.drift.total for sub in report.boards):
            log.warning(
                "reconcile repaired drift",
                extra={"reconcile": report.as_json()},
            )
        else:
            log.info("reconcile found no drift", extra={"reconcile": report.as_json()})
        return report

    @staticmethod
    def record(metrics: Metrics, report: ReconcileReport) -> None:
        metrics.reconcile_runs.labels(report.mode, "ok").inc()
        for pass_ in (report, *report.boards):  # every board's current period counts
            for kind in ("missing", "wrong", "extra"):
                metrics.reconcile_drift.labels(kind).inc(getattr(pass_.drift, kind))
        metrics.reconcile_duration.set(report.duration_seconds)
        metrics.reconcile_last_success.set(time.time())

    async def _forever(self) -> None:
        pause, delay = 0.0, 0.0  # seconds before a kick is heeded; before the next tick
        while not self._stopping:
            await asyncio.sleep(pause)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, delay - pause)):
                    await self._kicked.wait()
            if self._stopping:
                return
            kicked = self._kicked.is_set()
            self._kicked.clear()  # a kick during the pass asks for another one after it
            try:
                report = await self.run_once()
            except Exception:
                log.exception("reconcile pass crashed; retrying next time")
                report = None
            finally:
                self._attempted.set()
            if report is None and kicked:
                pause = delay = KICK_RETRY_SECONDS
            else:
                pause, delay = 0.0, self._interval * random.uniform(1 - _JITTER, 1 + _JITTER)


def reconcile_job(
    *,
    pool: asyncpg.Pool,
    redis: Redis,
    keys: Keys,
    scripts: Scripts,
    metrics: Metrics,
    interval: float,
    catalog: BoardCatalog | None = None,
) -> ReconcileJob:
    """The job with its lock and reconciler, as a serving node runs it (every board in the
    catalog: its current period)."""
    lock = ReconcileLock(redis, scripts, keys)
    reconciler = Reconciler(
        pool=pool, redis=redis, keys=keys, scripts=scripts, lock=lock, catalog=catalog
    )
    return ReconcileJob(reconciler, lock, metrics, interval)
