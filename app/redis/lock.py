"""The reconcile lock: one node at a time runs the reconciler, and a dead holder is replaced.

A Redis key set with ``NX`` and an expiry, holding a random token. The holder renews it in the
background while it works; a holder that crashes stops renewing, so the key expires and the
next node takes over. Renewal and release compare the token first (``lua/lock_extend.lua``,
``lua/lock_release.lua``), so a holder whose lock expired can never extend or delete its
successor's, and the rebuild's swap checks the token in the same atomic step as its rename.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.redis.keys import Keys
from app.redis.scripts import Scripts

log = logging.getLogger(__name__)

LOCK_TTL_SECONDS = 30.0


class LockLost(Exception):
    """The lock expired or was taken while its holder still worked."""


class ReconcileLock:
    def __init__(
        self, redis: Redis, scripts: Scripts, keys: Keys, ttl_seconds: float = LOCK_TTL_SECONDS
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self.key = keys.reconcile_lock
        self._ttl_ms = int(ttl_seconds * 1000)
        self.token: str | None = None  # set while this object holds the lock
        self.lost = asyncio.Event()

    async def acquire(self) -> bool:
        token = secrets.token_hex(16)
        if await self._redis.set(self.key, token, nx=True, px=self._ttl_ms):
            self.token = token
            self.lost.clear()
            return True
        return False

    async def extend(self) -> bool:
        if self.token is None:
            return False
        return await self._scripts.lock_extend(self.key, self.token, self._ttl_ms)

    async def release(self) -> None:
        token, self.token = self.token, None
        if token is not None:
            await self._scripts.lock_release(self.key, token)

    async def holder(self) -> str | None:
        """The token of whoever holds the lock now (for operators' messages)."""
        value = await self._redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[bool]:
        """Try to take the lock; yield whether we got it, renewing it until the block ends.

        If renewal fails, ``lost`` is set; work that must not continue without the lock
        checks it (the rebuild's swap also checks the token atomically)."""
        if not await self.acquire():
            yield False
            return
        renewer = asyncio.create_task(self._renew_forever(), name="reconcile-lock-renewal")
        try:
            yield True
        finally:
            # A cancellation landing while we clean up (the job stopping) must not skip the
            # release: shielded, and awaited to the end before the cancellation goes on.
            cleanup = asyncio.ensure_future(self._stop_and_release(renewer))
            try:
                await asyncio.shield(cleanup)
            except asyncio.CancelledError:
                await cleanup
                raise

    async def _stop_and_release(self, renewer: asyncio.Task[None]) -> None:
        renewer.cancel()
        await asyncio.gather(renewer, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self.release()

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                still_ours = await self.extend()
            except (RedisError, OSError) as error:
                log.warning("could not renew the reconcile lock: %s", error)
                continue  # the expiry still has two thirds to run; try again
            if not still_ours:
                log.warning("lost the reconcile lock; stopping this pass")
                self.lost.set()
                return
