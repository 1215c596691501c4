"""The rate limit stays exact while Redis is merely slow, and falls back only when it is away.

Two app instances sharing one database and one Redis namespace stand for two nodes: each has
its own per-process fallback limiter, so a request wrongly moved to the fallback shows up as
more than the limit across the pair. Latency is injected by a proxy in front of the shared Redis
(tests/support/fault_proxy.py); the server itself is never slowed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import pytest
from quart.typing import TestAppProtocol as AppProtocol
from quart.typing import TestClientProtocol as ClientProtocol

from app.http.app import create_app
from tests.conftest import BackingServers, Player, make_settings
from tests.support.fault_proxy import FaultProxy

LIMIT = 10
ACTIONS = ["quiz_a", "quiz_b", "quiz_c", "level_a", "level_b", "boss"]


@pytest.fixture
async def redis_proxies(backing_servers: BackingServers) -> AsyncIterator[list[FaultProxy]]:
    proxies = [await FaultProxy.in_front_of(backing_servers.redis_url, 6379) for _ in range(2)]
    yield proxies
    for proxy in proxies:
        await proxy.cut()


@contextlib.asynccontextmanager
async def nodes(
    proxies: Sequence[FaultProxy],
    backing_servers: BackingServers,
    database_url: str,
    namespace: str,
    **overrides: object,
) -> AsyncIterator[list[AppProtocol]]:
    """One app per proxy, each reaching Redis through its own proxy."""
    async with contextlib.AsyncExitStack() as stack:
        apps = []
        for proxy in proxies:
            settings = make_settings(
                database_url,
                proxy.url(backing_servers.redis_url),
                namespace,
                rate_limit_per_minute=LIMIT,
                **overrides,
            )
            apps.append(await stack.enter_async_context(create_app(settings).test_app()))
        yield apps


async def complete(client: ClientProtocol, player: Player, action_id: str) -> int:
    response = await client.post(
        "/api/action/complete", json={"actionId": action_id}, headers=player.headers
    )
    return int(response.status_code)


async def burst(app: AppProtocol, player: Player, count: int) -> list[int]:
    client = app.test_client()
    return list(
        await asyncio.gather(
            *(complete(client, player, ACTIONS[i % len(ACTIONS)]) for i in range(count))
        )
    )


def passed_the_gate(statuses: list[int]) -> int:
    """Requests the limit let through (a repeat answers 400 ALREADY_COMPLETED after the gate)."""
    return sum(1 for status in statuses if status != 429)


async def test_replies_slower_than_the_redis_timeout_still_give_an_exact_limit_across_nodes(
    redis_proxies, backing_servers, database_url, namespace, catalog_loaded, redis, make_player
) -> None:
    async with nodes(
        redis_proxies,
        backing_servers,
        database_url,
        namespace,
        redis_timeout_seconds=0.2,
        rate_limit_redis_timeout_seconds=5.0,
    ) as (first, second):
        alice = await make_player()
        for proxy in redis_proxies:
            proxy.reply_delay = 0.4  # beyond REDIS_TIMEOUT_SECONDS, within the gate's wait

        statuses = await asyncio.gather(burst(first, alice, 10), burst(second, alice, 10))

    allowed = passed_the_gate(statuses[0]) + passed_the_gate(statuses[1])
    refused = statuses[0].count(429) + statuses[1].count(429)
    assert (allowed, refused) == (LIMIT, 20 - LIMIT)
    assert 500 not in statuses[0] + statuses[1]


async def test_a_verdict_that_never_comes_is_a_refusal_never_a_local_allowance(
    redis_proxies, backing_servers, database_url, namespace, catalog_loaded, redis, make_player
) -> None:
    slow = redis_proxies[0]
    async with nodes(
        redis_proxies,
        backing_servers,
        database_url,
        namespace,
        redis_timeout_seconds=0.2,
        rate_limit_redis_timeout_seconds=1.0,
        redis_retry_seconds=30.0,  # once the slow node gives up on Redis it stays on its fallback
    ) as (slow_node, fine_node):
        alice = await make_player()
        # The slow node's requests reach Redis only after it stopped waiting for the verdict,
        # so Redis counts them late (or refuses them) while the other node keeps going.
        slow.request_delay = 3.0

        on_slow = await burst(slow_node, alice, 10)
        on_fine = await burst(fine_node, alice, 10)
        # The slow node now uses its fallback, which counted each unconfirmed request as used.
        after = await burst(slow_node, alice, 1)

    assert on_slow == [429] * 10
    assert after == [429]
    assert passed_the_gate(on_fine) <= LIMIT


async def test_a_redis_that_is_away_falls_back_to_the_per_process_limit(
    redis_proxies, backing_servers, database_url, namespace, catalog_loaded, redis, make_player, db
) -> None:
    async with nodes(
        redis_proxies[:1],
        backing_servers,
        database_url,
        namespace,
        redis_timeout_seconds=0.2,
        rate_limit_redis_timeout_seconds=5.0,
    ) as (node,):
        alice = await make_player()
        await redis_proxies[0].cut()

        client = node.test_client()
        statuses = [await complete(client, alice, ACTIONS[i % len(ACTIONS)]) for i in range(12)]

    assert statuses[: len(ACTIONS)] == [200] * len(ACTIONS)  # writes keep succeeding
    assert passed_the_gate(statuses) == LIMIT
    assert statuses[LIMIT:] == [429, 429]
    assert await db.fetchval("SELECT score FROM users WHERE id = $1", alice.user_id) == 230
