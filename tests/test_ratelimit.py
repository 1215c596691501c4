"""The in-process fallback limiter: the same sliding window as the Lua script."""

from __future__ import annotations

from app.core.ports import retry_after_seconds
from app.redis.rate_gate import LocalSlidingWindow
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
