"""The reconcile lock: held by one holder at a time, and always released, even when the
holder is cancelled while it releases (a node shutting down)."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from app.redis.keys import Keys
from app.redis.lock import ReconcileLock
from app.redis.scripts import Scripts


class SlowRelease(Scripts):
    """The real scripts, but releasing takes a moment: time for a cancellation to land."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        super().__init__(redis, keys)
        self.releasing = asyncio.Event()

    async def lock_release(self, key: str, token: str) -> bool:
        self.releasing.set()
        await asyncio.sleep(0.2)
        return await super().lock_release(key, token)


async def test_one_holder_at_a_time(redis: Redis, namespace: str) -> None:
    keys = Keys(namespace)
    first, second = (ReconcileLock(redis, Scripts(redis, keys), keys) for _ in range(2))
    async with first.held() as got_first:
        async with second.held() as got_second:
            assert (got_first, got_second) == (True, False)
    async with second.held() as got_again:
        assert got_again  # released when the first block ended


async def test_a_holder_cancelled_while_releasing_still_releases(
    redis: Redis, namespace: str
) -> None:
    keys = Keys(namespace)
    scripts = SlowRelease(redis, keys)
    lock = ReconcileLock(redis, scripts, keys)

    async def hold_briefly() -> None:
        async with lock.held() as got:
            assert got

    task = asyncio.create_task(hold_briefly())
    await asyncio.wait_for(scripts.releasing.wait(), 10)
    task.cancel()  # e.g. the reconcile job stopping at this very moment
    await asyncio.gather(task, return_exceptions=True)

    assert task.cancelled()
    assert not await redis.exists(keys.reconcile_lock)
