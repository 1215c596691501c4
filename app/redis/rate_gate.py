"""The rate-limit gate: one Redis script call, or an in-process limiter while Redis is away.

A cache outage never blocks a request and never lifts the limit: the fallback applies the same
sliding window in this process (so during an outage the limit holds per process), starting from
the requests this process already let through.

The rule under trouble (docs/operations.md, "Rate limits when Redis is slow or away"):

- A slow verdict is still the exact, cluster-wide one: the gate waits up to
  RATE_LIMIT_REDIS_TIMEOUT_SECONDS (to connect, as for a reply), longer than other Redis calls,
  and other calls timing out does not move it to the fallback.
- Redis is *away* after a connection error (refused, reset, or a connect that did not finish
  within that wait), or when no verdict came within it. Only then does the fallback decide.
- A request whose verdict never came is refused (429, retry in 1 s), never allowed: Redis may
  have counted it or not, may have refused it, or may run it later, so letting it through
  could exceed the limit. It is counted in the fallback as if it had been let through.
- A request that finds every connection of the gate's pool busy is refused the same way
  (nothing was sent, so nothing is counted): this process is overloaded, Redis is not away,
  and the fallback would only know this process's share of the limit.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable

from redis.exceptions import MaxConnectionsError, RedisError

from app.core.ports import RateScope
from app.redis.health import RedisHealth, is_slow_reply
from app.redis.keys import Keys
from app.redis.scripts import RateDecision, Scripts

# Bound on remembered callers in the fallback, so an outage cannot grow memory without end.
_MAX_LOCAL_KEYS = 100_000
# A request refused for want of a verdict may try again after this long.
UNCONFIRMED_RETRY_MS = 1000


class LocalSlidingWindow:
    """The same sliding-log rule as lua/rate_limit.lua, in memory."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._logs: dict[str, deque[float]] = {}
        self._clock = clock or time.monotonic

    def hit(self, key: str, limit: int, window_ms: int) -> RateDecision:
        now = self._clock() * 1000
        log = self._logs.get(key)
        if log is None:
            if len(self._logs) >= _MAX_LOCAL_KEYS:
                self._evict_idle(now, window_ms)
            log = self._logs[key] = deque()
        while log and log[0] <= now - window_ms:
            log.popleft()
        if len(log) < limit:
            log.append(now)
            return RateDecision(True, limit - len(log), 0)
        blocking = log[len(log) - limit]
        return RateDecision(False, 0, max(1, int(blocking + window_ms - now)))

    def _evict_idle(self, now: float, window_ms: int) -> None:
        idle = [k for k, log in self._logs.items() if not log or log[-1] <= now - window_ms]
        for key in idle:
            del self._logs[key]
        if len(self._logs) >= _MAX_LOCAL_KEYS:
            # Every caller is active: drop the oldest half rather than grow.
            for key in list(self._logs)[: _MAX_LOCAL_KEYS // 2]:
                del self._logs[key]


class RateLimiter:
    """The RateGate port: the sliding window in Redis, or in this process while Redis is away."""

    def __init__(
        self, scripts: Scripts, keys: Keys, health: RedisHealth, window_seconds: int = 60
    ) -> None:
        self._scripts = scripts
        self._key_of = {
            RateScope.SCORE_UPDATE: keys.rate_limit,
            RateScope.LOGIN_USER: keys.login_limit_user,
            RateScope.LOGIN_CLIENT: keys.login_limit_client,
            RateScope.API_KEY: keys.api_key_limit,
        }
        self._health = health
        self._window_ms = window_seconds * 1000
        self._local = LocalSlidingWindow()

    async def hit(self, scope: RateScope, subject: str, limit: int) -> RateDecision:
        """Count one request of ``subject`` in ``scope``; the decision says whether it may go
        on."""
        key = self._key_of[scope](subject)
        if not self._health.away():
            try:
                decision = await self._scripts.rate_limit(
                    key, limit, self._window_ms, uuid.uuid4().hex
                )
            except MaxConnectionsError:
                return RateDecision(False, 0, UNCONFIRMED_RETRY_MS)
            except (RedisError, OSError) as error:
                if is_slow_reply(error):
                    return self._unconfirmed(key, limit, error)
                # Refused, broken, or no connection within the gate's whole wait: away.
                self._health.failed(error, "rate limiting", away=True)
            else:
                self._health.succeeded()
                if decision.allowed:
                    # Shadow what this process let through, so that if Redis goes away the
                    # fallback starts from the caller's recent requests, not from zero.
                    self._local.hit(key, limit, self._window_ms)
                return decision
        self._health.fell_back()
        return self._local.hit(key, limit, self._window_ms)

    def _unconfirmed(self, key: str, limit: int, error: BaseException) -> RateDecision:
        """No verdict within the gate's wait: refuse, and count the request here as used."""
        self._health.failed(error, "rate limiting", away=True)
        self._local.hit(key, limit, self._window_ms)
        return RateDecision(False, 0, UNCONFIRMED_RETRY_MS)
