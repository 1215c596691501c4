"""RedisHealth: the outage memory shared by the request path and the subscription."""

from __future__ import annotations

from datetime import datetime

from app.redis.health import RedisHealth


def test_when_redis_answers_again_the_recovery_work_may_use_it_at_once() -> None:
    # The subscription notices first (a request failed moments ago and started a long retry
    # pause); the catch-up the recovery starts must not be skipped by that pause, or what was
    # committed during the outage never reaches Redis.
    health = RedisHealth(retry_after_seconds=60)
    seen: list[bool] = []

    def recovered(_: datetime) -> None:
        seen.append(health.available())

    health.on_recovery(recovered)
    health.failed(ConnectionError("refused"), "leaderboard update")
    assert not health.available()
    health.succeeded()
    assert seen == [True]
    assert health.available() and not health.is_down


def test_a_failure_pauses_further_attempts_for_the_retry_interval() -> None:
    health = RedisHealth(retry_after_seconds=60)
    assert health.available()
    health.failed(ConnectionError("refused"), "rate limit")
    assert health.is_down and not health.available()
