"""The rate gate: the in-process fallback limiter (the same sliding window as the Lua script),
and when the gate trusts Redis's verdict, falls back, or refuses for want of one."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.core.ports import RateScope, retry_after_seconds
from app.redis.health import RedisHealth
from app.redis.keys import Keys
from app.redis.rate_gate import LocalSlidingWindow, RateLimiter
from app.redis.scripts import RateDecision


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_allows_the_limit_then_refuses_until_the_oldest_leaves_the_window() -> None:
    clock = FakeClock()
    limiter = LocalSlidingWindow(clock)
    results = []
    for _ in range(10):
        results.append(limiter.hit("u", 10, 60_000).allowed)
        clock.now += 1
    assert all(results)
    refused = limiter.hit("u", 10, 60_000)
    assert not refused.allowed
    assert refused.retry_after_ms == 50_000  # the first request, at t=1000 s, leaves at t=1060 s

    clock.now = 1060.0
    assert limiter.hit("u", 10, 60_000).allowed
    assert not limiter.hit("u", 10, 60_000).allowed


def test_no_burst_across_a_window_edge() -> None:
    clock = FakeClock()
    limiter = LocalSlidingWindow(clock)
    clock.now = 1059.0
    assert sum(limiter.hit("u", 10, 60_000).allowed for _ in range(10)) == 10
    clock.now = 1061.0  # a fixed minute window would reset here and allow 10 more
    assert sum(limiter.hit("u", 10, 60_000).allowed for _ in range(10)) == 0


def test_users_are_counted_separately() -> None:
    limiter = LocalSlidingWindow(FakeClock())
    for _ in range(10):
        limiter.hit("alice", 10, 60_000)
    assert not limiter.hit("alice", 10, 60_000).allowed
    assert limiter.hit("bob", 10, 60_000).allowed


def test_refused_requests_do_not_push_the_retry_time_out() -> None:
    clock = FakeClock()
    limiter = LocalSlidingWindow(clock)
    limiter.hit("u", 1, 60_000)
    clock.now += 30
    first = limiter.hit("u", 1, 60_000)
    clock.now += 10
    second = limiter.hit("u", 1, 60_000)
    assert first.retry_after_ms - second.retry_after_ms == 10_000


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    assert retry_after_seconds(RateDecision(False, 0, 1)) == 1
    assert retry_after_seconds(RateDecision(False, 0, 1000)) == 1
    assert retry_after_seconds(RateDecision(False, 0, 1001)) == 2


class ScriptedRedis:
    """Stands in for the scripts facade: each call answers the next scripted outcome."""

    def __init__(self, *outcomes: RateDecision | Exception) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def rate_limit(self, key: str, limit: int, window_ms: int, request_id: str) -> Any:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def gate(scripts: ScriptedRedis, health: RedisHealth) -> RateLimiter:
    return RateLimiter(scripts, Keys("t"), health)  # type: ignore[arg-type]


SLOW = RedisTimeoutError("Timeout reading from 127.0.0.1:6379")
ALLOWED = RateDecision(True, 0, 0)


async def test_a_verdict_that_never_came_is_a_refusal_counted_as_used() -> None:
    health = RedisHealth(retry_after_seconds=60)
    limiter = gate(ScriptedRedis(SLOW), health)

    refused = await limiter.hit(RateScope.SCORE_UPDATE, "u", 1)

    assert (refused.allowed, refused.retry_after_ms) == (False, 1000)
    # Redis is now treated as away; the fallback counted the unconfirmed request as used.
    assert health.away()
    assert not (await limiter.hit(RateScope.SCORE_UPDATE, "u", 1)).allowed


@pytest.mark.parametrize(
    "error",
    [
        RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
        RedisTimeoutError("Timeout connecting to server"),  # nothing was sent
        OSError("Network is unreachable"),
    ],
)
async def test_a_redis_that_is_away_hands_over_to_the_fallback(error: Exception) -> None:
    health = RedisHealth(retry_after_seconds=60)
    scripts = ScriptedRedis(error)
    limiter = gate(scripts, health)

    assert (await limiter.hit(RateScope.SCORE_UPDATE, "u", 1)).allowed
    assert health.away()
    assert not (await limiter.hit(RateScope.SCORE_UPDATE, "u", 1)).allowed
    assert scripts.calls == 1  # while away, Redis is not asked


async def test_other_calls_timing_out_do_not_move_the_gate_off_redis() -> None:
    health = RedisHealth(retry_after_seconds=60)
    scripts = ScriptedRedis(ALLOWED, RateDecision(False, 0, 5000))
    limiter = gate(scripts, health)
    health.failed(SLOW, "leaderboard update")  # e.g. the apply script under CPU pressure

    assert not health.available() and not health.away()
    assert (await limiter.hit(RateScope.SCORE_UPDATE, "u", 10)).allowed
    assert not (await limiter.hit(RateScope.SCORE_UPDATE, "u", 10)).allowed  # Redis's word
    assert scripts.calls == 2


async def test_a_full_connection_pool_refuses_without_leaving_redis() -> None:
    """This process is overloaded; Redis is not away, and nothing was sent or counted."""
    health = RedisHealth(retry_after_seconds=60)
    scripts = ScriptedRedis(MaxConnectionsError("Too many connections"), ALLOWED)
    limiter = gate(scripts, health)

    busy = await limiter.hit(RateScope.SCORE_UPDATE, "u", 1)

    assert (busy.allowed, busy.retry_after_ms) == (False, 1000)
    assert not health.away()
    assert (await limiter.hit(RateScope.SCORE_UPDATE, "u", 1)).allowed  # Redis decides
    health.failed(MaxConnectionsError("Too many connections"), "leaderboard update")
    assert not health.away()


@pytest.mark.parametrize(
    "error",
    [
        RedisTimeoutError("Timeout reading from 127.0.0.1:6379"),
        RedisTimeoutError("Timeout connecting to server"),  # a short connect timeout, loaded CPU
        MaxConnectionsError("Too many connections"),
    ],
)
def test_only_a_refused_or_broken_connection_proves_redis_away(error: Exception) -> None:
    health = RedisHealth(retry_after_seconds=60)
    health.failed(error, "leaderboard update")
    assert not health.available() and not health.away()
    health.failed(RedisConnectionError("Connection reset by peer"), "leaderboard update")
    assert health.away()
