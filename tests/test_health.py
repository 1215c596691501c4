"""/healthz says the process is alive; /readyz says whether this node can serve, with reasons:
it turns 503 when Redis stops or the schema is behind, and back to 200 on recovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from quart.typing import TestAppProtocol as AppProtocol

from app.dev.servers import EmbeddedRedis
from app.http.app import create_app
from tests.conftest import make_settings
from tests.support.server_process import free_port


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis this test may stop: never the shared one."""
    # A fixed port, so a restart comes back where the app's clients expect it.
    server = EmbeddedRedis(tmp_path / "redis", port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def app_on_private_redis(
    private_redis: EmbeddedRedis, database_url: str, namespace: str, catalog_loaded: object
) -> AsyncIterator[AppProtocol]:
    settings = make_settings(database_url, private_redis.url, namespace)
    app = create_app(settings)
    async with app.test_app() as test_app:
        yield test_app


async def readyz(app: AppProtocol) -> tuple[int, dict[str, object]]:
    response = await app.test_client().get("/readyz")
    return response.status_code, await response.get_json()


async def test_ready_when_everything_answers(app) -> None:
    assert (await app.test_client().get("/healthz")).status_code == 200
    status, body = await readyz(app)
    assert status == 200
    assert body == {
        "status": "ready",
        "checks": {"postgres": "ok", "migrations": "ok", "redis": "ok"},
    }


async def test_not_ready_while_redis_is_stopped_and_ready_again_after(
    app_on_private_redis: AppProtocol, private_redis: EmbeddedRedis
) -> None:
    assert (await readyz(app_on_private_redis))[0] == 200
    private_redis.stop()
    status, body = await readyz(app_on_private_redis)
    assert status == 503
    assert body["status"] == "unavailable"
    assert str(body["checks"]["redis"]).startswith("unreachable")  # type: ignore[index]
    assert body["checks"]["postgres"] == "ok"  # type: ignore[index]
    # Alive all the same: nothing should restart this process.
    assert (await app_on_private_redis.test_client().get("/healthz")).status_code == 200

    private_redis.start()  # same port
    deadline = asyncio.get_running_loop().time() + 10
    while (await readyz(app_on_private_redis))[0] != 200:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)


async def test_not_ready_when_the_schema_is_behind_this_build(app, db: asyncpg.Connection) -> None:
    await db.execute("UPDATE schema_migration SET version = version - 1")
    status, body = await readyz(app)
    assert status == 503
    assert "this build needs" in str(body["checks"]["migrations"])  # type: ignore[index]
