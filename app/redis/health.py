"""Remembers that Redis just failed, so requests skip it for a moment instead of each waiting
for their own timeout, and try it again by themselves afterwards (no restart needed)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

log = logging.getLogger(__name__)

RecoveryListener = Callable[[datetime], None]


class RedisHealth:
    def __init__(self, retry_after_seconds: float) -> None:
        self._retry_after = retry_after_seconds
        self._retry_at = 0.0
        self._down_since: datetime | None = None
        self._recovery_listeners: list[RecoveryListener] = []
        self.failures = 0
        self.fallbacks = 0

    @property
    def is_down(self) -> bool:
        return self._down_since is not None

    def available(self) -> bool:
        """False for a moment after a failure; then callers try Redis again."""
        return time.monotonic() >= self._retry_at

    def failed(self, error: BaseException, during: str) -> None:
        self.failures += 1
        self._retry_at = time.monotonic() + self._retry_after
        if self._down_since is None:
            self._down_since = datetime.now(UTC)
            log.warning("redis unavailable during %s (%s); using fallbacks", during, error)

    def succeeded(self) -> None:
        if self._down_since is None:
            return
        since, self._down_since = self._down_since, None
        # Redis just answered: stop skipping it now, or the catch-up the listeners start would
        # skip it too while the last failure's retry pause runs (and re-apply nothing).
        self._retry_at = 0.0
        log.info("redis reachable again")
        for listener in list(self._recovery_listeners):
            listener(since)

    def fell_back(self) -> None:
        self.fallbacks += 1

    def on_recovery(self, listener: RecoveryListener) -> None:
        """Call ``listener`` with the time the outage began, each time Redis comes back."""
        self._recovery_listeners.append(listener)
