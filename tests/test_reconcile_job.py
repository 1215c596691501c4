"""The reconcile job's loop: it runs at start, when kicked and on its interval, survives a
crashing pass, and stops on shutdown (releasing the lock)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from redis.asyncio import Redis

from app.http.app import create_app
from app.obs.metrics import Metrics
from app.redis.keys import Keys
from app.redis.lock import ReconcileLock
from app.redis.scripts import Scripts
from app.repair.job import ReconcileJob
from app.repair.reconcile import ReconcileReport


class ScriptedReconciler:
    """Stands in for the reconciler: each pass runs the next step of a script."""

    def __init__(self, *steps: Callable[[], Awaitable[None]]) -> None:
        self._steps = list(steps)
        self.passes = 0

    async def run(self, *, full: bool = False, dry_run: bool = False) -> ReconcileReport:
        self.passes += 1
        if self._steps:
            await self._steps.pop(0)()
        return ReconcileReport("incremental", dry_run, None)


async def crash() -> None:
    raise RuntimeError("a bug in the pass")


async def fine() -> None:
    return None


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.02)


def job_of(reconciler: ScriptedReconciler, redis: Redis, namespace: str) -> ReconcileJob:
    keys = Keys(namespace)
    lock = ReconcileLock(redis, Scripts(redis, keys), keys)
    return ReconcileJob(reconciler, lock, Metrics(), interval=3600)  # type: ignore[arg-type]


async def test_a_crashing_pass_is_logged_and_the_loop_keeps_running(
    redis: Redis, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    reconciler = ScriptedReconciler(crash, fine)
    job = job_of(reconciler, redis, namespace)
    caplog.set_level(logging.ERROR, logger="app.repair.job")

    job.start()
    try:
        # The first pass (at start) crashes; being a kicked one, it is retried soon after.
        await eventually(lambda: reconciler.passes >= 2)
    finally:
        await job.stop()

    crashed = [r for r in caplog.records if "reconcile pass crashed" in r.getMessage()]
    assert len(crashed) == 1 and crashed[0].exc_info is not None
    assert not await redis.exists(Keys(namespace).reconcile_lock)  # released after the crash


async def test_a_kick_runs_a_pass_now_instead_of_at_the_next_interval(
    redis: Redis, namespace: str
) -> None:
    reconciler = ScriptedReconciler()
    job = job_of(reconciler, redis, namespace)
    job.start()
    try:
        await job.first_attempt(at_most=10)
        assert reconciler.passes == 1

        job.kick()
        await eventually(lambda: reconciler.passes == 2)  # the interval is an hour
    finally:
        await job.stop()


async def test_stopping_cancels_a_pass_in_progress_and_releases_the_lock(
    redis: Redis, namespace: str
) -> None:
    started, never = asyncio.Event(), asyncio.Event()

    async def long_pass() -> None:
        started.set()
        await never.wait()

    job = job_of(ScriptedReconciler(long_pass), redis, namespace)
    job.start()
    await asyncio.wait_for(started.wait(), 10)
    assert await redis.exists(Keys(namespace).reconcile_lock)

    await job.stop()

    assert not await redis.exists(Keys(namespace).reconcile_lock)
    job.kick()  # harmless once stopped


async def test_a_node_starting_on_a_cold_redis_rebuilds_the_ranking_before_serving(
    settings, catalog_loaded, db: asyncpg.Connection, redis: Redis, namespace: str
) -> None:
    await db.execute(
        "INSERT INTO users (username, score, reached_at) "
        "SELECT 'early' || g, g, now() FROM generate_series(1, 300) g"
    )
    keys = Keys(namespace)
    assert not await redis.exists(keys.version)

    async with create_app(settings).test_app() as test_app:
        assert await redis.zcard(keys.ranking) == 300
        body = await (await test_app.test_client().get("/api/leaderboard")).get_json()
        assert [u["username"] for u in body["users"]][:3] == ["early300", "early299", "early298"]
        assert body["epoch"] != "0"  # from the rebuilt Redis, not the database fallback
