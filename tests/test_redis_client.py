"""REDIS_URL: one server, or a Sentinel group (app/redis/client.py). The failover itself is
tests/test_sentinel_failover.py."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from app.redis.client import (
    SentinelMaster,
    is_sentinel_url,
    parse_sentinel_url,
    redis_from_url,
)


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database() -> None:
    url = "redis+sentinel://app:s%40cret@10.0.0.1:26380,sentinel-b,[::1]:26381/leaderboard/2"
    parsed = parse_sentinel_url(url)
    assert parsed.sentinels == (("10.0.0.1", 26380), ("sentinel-b", 26379), ("::1", 26381))
    assert parsed.service_name == "leaderboard"
    assert parsed.db == 2
    assert (parsed.username, parsed.password) == ("app", "s@cret")
    assert "s@cret" not in repr(parsed)


def test_sentinel_credentials_come_from_the_query_and_the_database_defaults_to_0() -> None:
    parsed = parse_sentinel_url(
        "redis+sentinel://:pw@h1/mymaster?sentinel_username=sen&sentinel_password=spw"
    )
    assert parsed.db == 0 and parsed.username is None and parsed.password == "pw"
    assert (parsed.sentinel_username, parsed.sentinel_password) == ("sen", "spw")
    assert "spw" not in repr(parsed)


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel:///mymaster",  # no Sentinel
        "redis+sentinel://h1:26379",  # no service name
        "redis+sentinel://h1/mymaster/zero",  # database not a number
        "redis+sentinel://h1/mymaster/0/extra",
        "redis+sentinel://h1:99999/mymaster",
        "redis+sentinel://h1/mymaster?socket_timeout=0",  # options come from the settings
        "redis+sentinel://" + ",".join(f"h{i}" for i in range(17)) + "/mymaster",
    ],
)
def test_a_malformed_sentinel_url_is_refused_without_echoing_a_password(url: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_sentinel_url(url.replace("://", "://u:hunter2@", 1))
    assert "hunter2" not in str(refused.value)


def test_plain_urls_still_make_plain_clients() -> None:
    assert not is_sentinel_url("redis://127.0.0.1:6379/0")
    client = redis_from_url("redis://127.0.0.1:6379/3", socket_timeout=1.5)
    assert type(client) is Redis
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["db"] == 3 and kwargs["socket_timeout"] == 1.5


async def test_a_sentinel_url_makes_a_master_client_that_asks_the_sentinels() -> None:
    client = redis_from_url(
        "redis+sentinel://127.0.0.1:1,127.0.0.1:2/leaderboard/1",
        socket_timeout=None,
        socket_connect_timeout=0.5,
    )
    assert isinstance(client, SentinelMaster)
    pool = client.connection_pool
    assert pool.connection_kwargs["db"] == 1
    sentinels = pool.sentinel_manager.sentinels  # type: ignore[attr-defined]
    # A subscriber may wait forever on the master, never on a Sentinel.
    assert all(s.connection_pool.connection_kwargs["socket_timeout"] == 0.5 for s in sentinels)
    with pytest.raises(RedisConnectionError):  # nobody listens there: fails, does not hang
        await client.ping()
    await client.aclose()
