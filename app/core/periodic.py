"""The one way to run background work: periodic tasks that survive their own failures.

Every loop in the service (catalog refresh, live registry flush, heartbeats, reconcile) runs
through ``Periodic``: an exception is logged with the task's name and the loop goes on at its
next tick; ``stop()`` cancels every task and waits for it, so shutdown leaves nothing running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    """A group of background tasks owned by one component and stopped together."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def every(self, seconds: float, action: Callable[[], Awaitable[object]], *, name: str) -> None:
        """Run ``action`` every ``seconds`` (after each wait) until stopped."""
        self._tasks.append(asyncio.create_task(_loop(seconds, action, name), name=name))

    @property
    def running(self) -> bool:
        return any(not task.done() for task in self._tasks)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


async def _loop(seconds: float, action: Callable[[], Awaitable[object]], name: str) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await action()
        except Exception:
            # One failure must not end the loop (a stopped heartbeat or refresh fails
            # silently); the next tick tries again.
            log.exception("background task %r failed; it runs again in %.1f s", name, seconds)
