"""A hung PostgreSQL (stopped, not crashed) must not hold a write for long, and the answer must
say truthfully whether the award can have been recorded.

The hang is a paused proxy in front of the shared server (tests/support/fault_proxy.py): it
holds every byte both ways, as a server stopped with SIGSTOP would, and delivers what the
service sent before giving up when it resumes, so a statement can still run after the client
was answered. The shared server itself is never stopped.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from quart.typing import TestAppProtocol as AppProtocol
from quart.typing import TestClientProtocol as ClientProtocol
from redis.asyncio import Redis

from app.db.sessions import LISTENER_APPLICATION_NAME
from app.http.app import create_app
from app.redis.keys import Keys
from tests.conftest import BackingServers, Player, make_settings, services_of
from tests.support.fault_proxy import FaultProxy

# Well past every bound configured below, and short of the 20 s the service used to take.
CLIENT_GIVES_UP = 15.0


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def pg_proxy(database_url: str) -> AsyncIterator[FaultProxy]:
    proxy = await FaultProxy.in_front_of(database_url, 5432)
    yield proxy
    proxy.resume()
    await proxy.cut()


async def start_app(pg_proxy: FaultProxy, database_url: str, redis_url: str, namespace: str):  # type: ignore[no-untyped-def]
    settings = make_settings(
        pg_proxy.url(database_url),
        redis_url,
        namespace,
        # One connection, so the statement prepared by a first request is the one re-used.
        db_pool_min=1,
        db_pool_max=1,
        db_connect_timeout_seconds=1.0,
        db_acquire_timeout_seconds=1.0,
        db_statement_timeout_seconds=1.0,
        db_rank_timeout_seconds=0.5,
        redis_timeout_seconds=0.5,
    )
    return create_app(settings).test_app()


@pytest.fixture
async def hung_app(
    pg_proxy: FaultProxy,
    backing_servers: BackingServers,
    database_url: str,
    namespace: str,
    catalog_loaded: object,
    redis: Redis,
) -> AsyncIterator[AppProtocol]:
    async with await start_app(
        pg_proxy, database_url, backing_servers.redis_url, namespace
    ) as test_app:
        yield test_app


@pytest.fixture
async def hung_app_without_redis(
    pg_proxy: FaultProxy, database_url: str, namespace: str, catalog_loaded: object
) -> AsyncIterator[AppProtocol]:
    redis_url = f"redis://127.0.0.1:{closed_port()}/0"
    async with await start_app(pg_proxy, database_url, redis_url, namespace) as test_app:
        yield test_app


async def complete(client: ClientProtocol, player: Player, action_id: str):  # type: ignore[no-untyped-def]
    async with asyncio.timeout(CLIENT_GIVES_UP):
        return await client.post(
            "/api/action/complete", json={"actionId": action_id}, headers=player.headers
        )


async def eventually(condition: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.05)


async def service_backends(db: asyncpg.Connection) -> set[int]:
    rows = await db.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND application_name <> $1",
        LISTENER_APPLICATION_NAME,  # the node's LISTEN session, open for its whole life
    )
    return {row["pid"] for row in rows}


async def until_gone(db: asyncpg.Connection, backends: set[int]) -> None:
    """Wait until the server has run everything those sessions sent and they have ended."""

    async def gone() -> bool:
        return not (await service_backends(db) & backends)

    await eventually(gone)


async def history(db: asyncpg.Connection, player: Player, action_id: str) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM score_history WHERE user_id = $1 AND action_id = $2",
            player.user_id,
            action_id,
        )
    )


async def test_a_write_to_a_hung_database_answers_in_time_and_a_retry_is_safe(
    hung_app: AppProtocol, pg_proxy: FaultProxy, make_player, db: asyncpg.Connection
) -> None:
    client = hung_app.test_client()
    alice = await make_player("alice")
    # The commit statement is now prepared on the pool's one connection: next time only its
    # execution is sent, so the hang below catches a commit that really left the service.
    assert (await complete(client, alice, "quiz_a")).status_code == 200
    backends = await service_backends(db)

    pg_proxy.pause()
    response = await complete(client, alice, "boss")

    assert response.status_code == 503
    error = (await response.get_json())["error"]
    assert error["code"] == "COMMIT_OUTCOME_UNKNOWN"
    assert error["actionId"] == "boss"
    assert "nothing was changed" not in error["message"]

    # The database wakes up and finds the statement in its socket buffer.
    pg_proxy.resume()
    await until_gone(db, backends)
    recorded = await history(db, alice, "boss")
    assert recorded in (0, 1)

    retry = await complete(client, alice, "boss")

    if recorded:
        assert retry.status_code == 400
        receipt = (await retry.get_json())["error"]
        assert (receipt["code"], receipt["pointsEarned"]) == ("ALREADY_COMPLETED", 100)
    else:
        assert retry.status_code == 200
    # Exactly once, whichever way it went.
    assert await history(db, alice, "boss") == 1
    assert await db.fetchval("SELECT score FROM users WHERE id = $1", alice.user_id) == 110


async def test_a_write_that_cannot_get_a_connection_says_nothing_was_changed(
    hung_app: AppProtocol, pg_proxy: FaultProxy, make_player, db: asyncpg.Connection
) -> None:
    client = hung_app.test_client()
    alice = await make_player("alice")
    # The next acquire must open a new connection, which the hung server never lets finish.
    await services_of(hung_app).pool.expire_connections()
    backends = await service_backends(db)

    pg_proxy.pause()
    response = await complete(client, alice, "boss")

    assert response.status_code == 500
    error = (await response.get_json())["error"]
    assert error["code"] == "INTERNAL_SERVER_ERROR"
    assert "nothing was changed" in error["message"]

    pg_proxy.resume()
    await until_gone(db, backends)
    assert await history(db, alice, "boss") == 0
    assert (await complete(client, alice, "boss")).status_code == 200
    assert await history(db, alice, "boss") == 1


async def test_an_award_committed_just_before_the_database_hung_answers_success(
    hung_app_without_redis: AppProtocol, pg_proxy: FaultProxy, make_player, db
) -> None:
    client = hung_app_without_redis.test_client()
    alice = await make_player()
    # Redis is away, so the rank must come from PostgreSQL, which hangs right after the commit
    # (the only answer through the proxy that carries the username: the commit's RETURNING).
    pg_proxy.pause_after_reply(alice.identity.username.encode())

    response = await complete(client, alice, "boss")

    assert response.status_code == 200
    assert await response.get_json() == {
        "success": True,
        "pointsEarned": 100,
        "newScore": 100,
        "rank": None,  # neither Redis nor PostgreSQL could say in time
        "previousRank": None,
        "top10Changed": False,
    }
    pg_proxy.resume()
    assert await history(db, alice, "boss") == 1
    assert await db.fetchval("SELECT score FROM users WHERE id = $1", alice.user_id) == 100


async def test_an_award_committed_while_the_ranking_is_cold_and_the_database_hangs_answers_success(
    hung_app: AppProtocol, pg_proxy: FaultProxy, make_player, db, redis: Redis, namespace: str
) -> None:
    client = hung_app.test_client()
    alice = await make_player()
    await redis.delete(*Keys(namespace).leaderboard_keys())  # as after a Redis restart
    # The apply finds a cold ranking and seeds it from PostgreSQL, which hangs after the commit.
    pg_proxy.pause_after_reply(alice.identity.username.encode())

    response = await complete(client, alice, "level_a")

    assert response.status_code == 200
    body = await response.get_json()
    assert (body["success"], body["pointsEarned"], body["newScore"]) == (True, 50, 50)
    pg_proxy.resume()
    assert await history(db, alice, "level_a") == 1
