"""Partial failures (SPEC §Partial Failure Handling): Redis or PostgreSQL goes away mid-test.

The outage is a cut TCP proxy in front of the real server, so the shared servers keep running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from quart.typing import TestAppProtocol as AppProtocol
from redis.asyncio import Redis

from app.http.app import create_app
from app.redis.keys import Keys
from app.redis.lock import ReconcileLock
from app.redis.scripts import Scripts
from tests.conftest import BackingServers, make_settings, services_of
from tests.support.tcp_proxy import TcpProxy


def through(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


async def proxy_to(url: str) -> TcpProxy:
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 0)
    await proxy.start()
    return proxy


@pytest.fixture
async def proxies(
    backing_servers: BackingServers, database_url: str
) -> AsyncIterator[dict[str, TcpProxy]]:
    found = {
        "postgres": await proxy_to(database_url),
        "redis": await proxy_to(backing_servers.redis_url),
    }
    yield found
    for proxy in found.values():
        await proxy.cut()


@pytest.fixture
async def fragile_app(
    proxies, backing_servers, database_url, namespace, catalog_loaded, redis
) -> AsyncIterator[AppProtocol]:
    settings = make_settings(
        through(database_url, proxies["postgres"]),
        through(backing_servers.redis_url, proxies["redis"]),
        namespace,
        rate_limit_per_minute=4,
        redis_timeout_seconds=0.5,
    )
    app = create_app(settings)
    async with app.test_app() as test_app:
        yield test_app


async def complete(client, player, action_id):  # type: ignore[no-untyped-def]
    return await client.post(
        "/api/action/complete", json={"actionId": action_id}, headers=player.headers
    )


async def eventually(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.05)


async def test_with_redis_down_updates_succeed_reads_answer_and_the_limit_holds(
    fragile_app, proxies, make_player, db: asyncpg.Connection, redis: Redis, namespace: str
) -> None:
    client = fragile_app.test_client()
    alice, bob = await make_player("alice"), await make_player("bob")
    assert (await complete(client, alice, "boss")).status_code == 200

    await proxies["redis"].cut()

    during = await complete(client, bob, "level_a")
    assert during.status_code == 200
    body = await during.get_json()
    assert (body["newScore"], body["rank"], body["previousRank"]) == (50, 2, None)
    assert body["top10Changed"] is False
    board = await client.get("/api/leaderboard")
    assert board.status_code == 200
    assert [u["username"] for u in (await board.get_json())["users"]] == ["alice"]  # cached

    # The per-process fallback keeps the limit (4 per minute here): bob has used 1, and the
    # fallback remembers alice's request that went through Redis before the outage.
    statuses = [
        (await complete(client, bob, a)).status_code
        for a in ("quiz_a", "quiz_b", "quiz_c", "level_b")
    ]
    assert statuses == [200, 200, 200, 429]

    await proxies["redis"].restore()

    # Without a restart: the subscription comes back and the missed commits are re-applied.
    async def board_shows_bob() -> bool:
        users = (await (await client.get("/api/leaderboard")).get_json())["users"]
        return [(u["username"], u["score"]) for u in users] == [("bob", 80), ("alice", 100)][::-1]

    await eventually(board_shows_bob)
    members = await redis.zrevrange(Keys(namespace).ranking, 0, -1, withscores=True)
    assert [score for _, score in members] == [100.0, 80.0]


async def board_of(client) -> dict[str, object]:  # type: ignore[no-untyped-def]
    body: dict[str, object] = await (await client.get("/api/leaderboard")).get_json()
    return body


async def test_a_redis_that_lost_its_data_is_rebuilt_in_the_background(
    fragile_app, proxies, make_player, redis: Redis, namespace: str
) -> None:
    client = fragile_app.test_client()
    alice, bob = await make_player("alice"), await make_player("bob")
    await complete(client, alice, "boss")
    await complete(client, bob, "quiz_a")
    epoch_before = (await board_of(client))["epoch"]
    # As after a restart without persistence.
    await redis.delete(*Keys(namespace).leaderboard_keys())

    after = await complete(client, bob, "level_a")

    # Answered as during an outage: ranks from PostgreSQL, no claim about the top 10.
    assert after.status_code == 200
    body = await after.get_json()
    assert (body["newScore"], body["rank"], body["previousRank"], body["top10Changed"]) == (
        60,
        2,
        2,
        False,
    )

    async def rebuilt_under_a_new_epoch() -> bool:
        board = await board_of(client)
        users = [(u["username"], u["score"]) for u in board["users"]]  # type: ignore[attr-defined]
        return board["epoch"] != epoch_before and users == [("alice", 100), ("bob", 60)]

    await eventually(rebuilt_under_a_new_epoch)


async def test_a_write_on_a_cold_ranking_never_waits_for_a_rebuild(
    fragile_app, proxies, make_player, db: asyncpg.Connection, redis: Redis, namespace: str
) -> None:
    client = fragile_app.test_client()
    keys = Keys(namespace)
    alice, bob = await make_player("alice"), await make_player("bob")
    await complete(client, alice, "boss")
    await db.execute(
        "INSERT INTO users (username, score, reached_at) "
        "SELECT 'bulk' || g, 1 + g % 5, now() FROM generate_series(1, 500) g"
    )
    # Another node holds the reconcile lock (as during its pass): nothing may rebuild now.
    other_node = ReconcileLock(redis, Scripts(redis, keys), keys)
    assert await other_node.acquire()
    await redis.delete(*keys.leaderboard_keys())

    response = await complete(client, bob, "quiz_a")

    assert response.status_code == 200
    assert (await response.get_json())["rank"] == 2  # from PostgreSQL: behind alice
    # The request did not scan the users table into Redis: the ranking is still cold.
    assert not await redis.exists(keys.version)
    assert await redis.zcard(keys.ranking) <= 1
    # Readers keep the last board meanwhile.
    assert [u["username"] for u in (await board_of(client))["users"]] == ["alice"]  # type: ignore[index]

    await other_node.release()
    await complete(client, bob, "quiz_b")  # finds it cold again: the job is asked once more

    async def rebuilt() -> bool:
        return await redis.zcard(keys.ranking) == 502

    await eventually(rebuilt)

    # The rebuilt board reaches this node through its subscription: wait for it, not a moment.
    async def board_shows_the_rebuild() -> bool:
        top = [u["username"] for u in (await board_of(client))["users"]]  # type: ignore[index]
        return top[:2] == ["alice", "bob"] and len(top) == 10

    await eventually(board_shows_the_rebuild)


async def test_with_postgres_down_updates_fail_cleanly_and_reads_keep_serving(
    fragile_app, proxies, make_player, db: asyncpg.Connection
) -> None:
    client = fragile_app.test_client()
    alice = await make_player("alice")
    assert (await complete(client, alice, "quiz_a")).status_code == 200

    await proxies["postgres"].cut()

    failed = await complete(client, alice, "boss")
    assert failed.status_code == 500
    error = (await failed.get_json())["error"]
    assert error["code"] == "INTERNAL_SERVER_ERROR"
    assert "Traceback" not in error["message"]
    board = await client.get("/api/leaderboard")
    assert board.status_code == 200
    assert [u["score"] for u in (await board.get_json())["users"]] == [10]

    await proxies["postgres"].restore()

    async def update_goes_through() -> bool:
        return (await complete(client, alice, "boss")).status_code == 200

    await eventually(update_goes_through)
    # Nothing from the failed attempt was half-applied.
    assert await db.fetchval("SELECT score FROM users WHERE id = $1", alice.user_id) == 110
    assert await db.fetchval("SELECT count(*) FROM score_history") == 2
    assert services_of(fragile_app).board.current is not None


async def test_a_node_that_starts_while_redis_is_down_serves_the_board_from_the_database(
    proxies, backing_servers, database_url, namespace, catalog_loaded, redis, make_player, db
) -> None:
    alice = await make_player("alice")
    await db.execute("UPDATE users SET score = 70 WHERE id = $1", alice.user_id)
    await proxies["redis"].cut()
    settings = make_settings(
        through(database_url, proxies["postgres"]),
        through(backing_servers.redis_url, proxies["redis"]),
        namespace,
        redis_timeout_seconds=0.5,
    )
    app = create_app(settings)
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/api/leaderboard")
        assert response.status_code == 200
        body = await response.get_json()
        assert [(u["username"], u["score"], u["rank"]) for u in body["users"]] == [("alice", 70, 1)]


async def test_a_user_who_used_the_limit_before_the_outage_stays_limited(
    fragile_app, proxies, make_player
) -> None:
    client = fragile_app.test_client()
    carol = await make_player("carol")
    for action in ("quiz_a", "quiz_b", "quiz_c", "level_a"):  # the limit is 4 here
        assert (await complete(client, carol, action)).status_code == 200

    await proxies["redis"].cut()

    refused = await complete(client, carol, "level_b")
    assert refused.status_code == 429
