"""This node's one Redis subscription: every published top-10 message goes to its board.

After a lost subscription it resubscribes with backoff and then re-reads the stored message,
so a change published while it was away is not missed (versions make the re-read harmless).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.board import Boards
from app.redis.health import RedisHealth
from app.redis.keys import Keys

log = logging.getLogger(__name__)

_BACKOFF_START, _BACKOFF_MAX = 0.2, 5.0


class Subscription:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        boards: Boards,
        health: RedisHealth,
        control: Mapping[str, Callable[[bytes], None]] | None = None,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._board = boards  # routes each message to the board it names
        # Further channels on the same connection (the live node's control channel), so a
        # process still holds one subscription.
        self._control = {name.encode(): handler for name, handler in (control or {}).items()}
        # Shared with the request path: a lost subscription marks Redis down, and getting it
        # back marks Redis up, which re-applies what was committed meanwhile even when no
        # request comes in to notice.
        self._health = health
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="leaderboard-subscription")

    async def stop(self) -> None:
        self._stopping = True
        task = self._task
        # redis-py can swallow a cancellation that lands while it connects (it surfaces as a
        # connection error), so cancel until the task has really ended.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)

    async def _run(self) -> None:
        delay = _BACKOFF_START
        while not self._stopping:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as error:
                if self.connected.is_set():
                    log.warning("lost the leaderboard subscription (%s); resubscribing", error)
                self._health.failed(error, "subscription")
            except Exception:
                log.exception("leaderboard subscription failed; resubscribing")
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, _BACKOFF_MAX)

    async def _listen(self) -> None:
        async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(self._keys.updates_channel, *self._control)
            # Subscribed first, then read the stored message: nothing can fall in between.
            stored = await self._redis.get(self._keys.message)
            if stored is not None:
                self._board.offer(stored)
            self.connected.set()
            self._health.succeeded()
            log.info("subscribed to %s", self._keys.updates_channel)
            while True:
                message = await pubsub.get_message(timeout=30.0)
                if message is None:
                    # Idle: a PING proves the connection still works (a dead peer raises here).
                    await pubsub.ping()
                    continue
                if message["type"] != "message":
                    continue
                handler = self._control.get(message["channel"])
                if handler is not None:
                    handler(message["data"])
                else:
                    self._board.offer(message["data"])
