"""Remembers that Redis just failed, so requests skip it for a moment instead of each waiting
for their own timeout, and try it again by themselves afterwards (no restart needed).

Two verdicts: *failed* (any error, a slow reply too: callers with a fallback that is as good,
like the ranking cache, skip Redis for a moment) and *away* (the rate gate, whose fallback is
only per process, switches to it only then). By default only a refused or broken connection
proves Redis away. A timeout does not: under CPU pressure a reply, or a connect to a local
Redis, is late as often because this process is slow as because Redis is gone; the rate gate,
which waits longest, says "away" itself when its own wait runs out. Nor does a full connection
pool: that is this process being busy, and nothing was sent."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from redis.exceptions import MaxConnectionsError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

RecoveryListener = Callable[[datetime], None]


def is_slow_reply(error: BaseException) -> bool:
    """The command was sent and its reply did not come in time (Redis may still run it)."""
    if isinstance(error, RedisTimeoutError | TimeoutError):
        # redis-py raises its TimeoutError for a connect that timed out too: nothing was sent.
        return "connecting" not in str(error)
    return False


def proves_away(error: BaseException) -> bool:
    """A refused or broken connection, not a timeout of any kind nor a full pool."""
    return not isinstance(error, RedisTimeoutError | TimeoutError | MaxConnectionsError)


class RedisHealth:
    def __init__(self, retry_after_seconds: float) -> None:
        self._retry_after = retry_after_seconds
        self._retry_at = 0.0
        self._away_until = 0.0
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

    def away(self) -> bool:
        """True for a moment after Redis was found away (not merely slow)."""
        return time.monotonic() < self._away_until

    def failed(self, error: BaseException, during: str, *, away: bool | None = None) -> None:
        """A call failed. ``away`` says whether that proves Redis away; by default, when the
        connection was refused or broke."""
        self.failures += 1
        self._retry_at = time.monotonic() + self._retry_after
        if proves_away(error) if away is None else away:
            self._away_until = self._retry_at
        if self._down_since is None:
            self._down_since = datetime.now(UTC)
            log.warning("redis unavailable during %s (%s); using fallbacks", during, error)

    def succeeded(self) -> None:
        self._away_until = 0.0
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
