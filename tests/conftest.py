"""Shared fixtures: real PostgreSQL and Redis, and a database and key namespace per test.

Servers, in order: TEST_DATABASE_URL / TEST_REDIS_URL from the environment; else
testcontainers when a Docker engine answers; else PostgreSQL and Valkey from pip wheels.
Every test gets its own database (copied from a migrated template) and its own Redis key
namespace, so tests never see each other's data and runs can share servers.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from quart import Quart
from quart.typing import TestAppProtocol, TestClientProtocol
from redis.asyncio import Redis

from app.core.catalog import Action
from app.core.settings import Settings
from app.core.tokens import Identity, issue_access_token
from app.db.accounts import ensure_user
from app.db.actions import upsert_actions
from app.db.migrations import migrate
from app.http.app import create_app
from app.http.services import Services

TEST_SECRET = "test-secret-" + "x" * 40

# The catalog every app fixture starts with (each test database gets its own copy).
TEST_ACTIONS = [
    Action("quiz_a", "Quiz A", 10),
    Action("quiz_b", "Quiz B", 10),
    Action("quiz_c", "Quiz C", 10),
    Action("level_a", "Level A", 50),
    Action("level_b", "Level B", 50),
    Action("boss", "Boss", 100),
    Action("daily_login", "Daily login", 5, repeat="daily"),
    Action("retired", "Retired", 10, active=False),
]


@dataclass(frozen=True)
class BackingServers:
    database_url: str  # an admin URL (any database); tests derive their own databases
    redis_url: str


def _docker_available() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def backing_servers() -> Iterator[BackingServers]:
    database_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    with contextlib.ExitStack() as stack:
        if not (database_url and redis_url) and _docker_available():
            from testcontainers.postgres import PostgresContainer
            from testcontainers.redis import RedisContainer

            if not database_url:
                pg = stack.enter_context(PostgresContainer("postgres:17-alpine", driver=None))
                database_url = pg.get_connection_url()
            if not redis_url:
                rd = stack.enter_context(RedisContainer("redis:7-alpine"))
                redis_url = f"redis://{rd.get_container_host_ip()}:{rd.get_exposed_port(6379)}/0"
        if not database_url or not redis_url:
            from app.dev.servers import EmbeddedPostgres, EmbeddedRedis

            # Not under pytest's basetemp: a concurrent pytest run prunes old basetemps and
            # would delete a data folder this run still uses.
            data_root = Path(tempfile.mkdtemp(prefix="leaderboard-test-servers-"))
            stack.callback(shutil.rmtree, data_root, ignore_errors=True)
            if not database_url:
                pg_server = EmbeddedPostgres(data_root / "postgres", durable=False)
                pg_server.start()
                stack.callback(pg_server.stop)
                database_url = pg_server.url
            if not redis_url:
                redis_server = EmbeddedRedis(data_root / "redis")
                redis_server.start()
                stack.callback(redis_server.stop)
                redis_url = redis_server.url
        yield BackingServers(database_url, redis_url)


def database_url_for(admin_url: str, name: str) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
async def template_database(backing_servers: BackingServers) -> AsyncIterator[str]:
    """A migrated, empty database that each test's database is copied from."""
    name = f"lbt_template_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(backing_servers.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(database_url_for(backing_servers.database_url, name))
    try:
        await migrate(conn)
    finally:
        await conn.close()
    yield name
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture
async def database_url(
    backing_servers: BackingServers, template_database: str
) -> AsyncIterator[str]:
    name = f"lbt_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(backing_servers.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        yield database_url_for(backing_servers.database_url, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis(backing_servers: BackingServers, namespace: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(backing_servers.redis_url)
    yield client
    keys = [key async for key in client.scan_iter(match=f"*{namespace}*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def make_settings(
    database_url: str, redis_url: str, namespace: str, **overrides: object
) -> Settings:
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        jwt_secret=TEST_SECRET,
        redis_namespace=namespace,
        # Fast hashing: the tests check behaviour, not the cost of argon2.
        password_time_cost=1,
        password_memory_kib=1024,
        catalog_refresh_seconds=3600,
        redis_retry_seconds=0.2,
        db_pool_min=1,
    )
    return settings.with_overrides(**overrides)


@pytest.fixture
def settings(backing_servers: BackingServers, database_url: str, namespace: str) -> Settings:
    return make_settings(database_url, backing_servers.redis_url, namespace)


@pytest.fixture
def service_env(
    backing_servers: BackingServers, database_url: str, namespace: str
) -> dict[str, str]:
    """The environment for running `leaderboard serve` against this test's database and keys."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": backing_servers.redis_url,
        "REDIS_NAMESPACE": namespace,
        "JWT_SECRET": TEST_SECRET,
        "PASSWORD_TIME_COST": "1",
        "PASSWORD_MEMORY_KIB": "1024",
    }


@pytest.fixture
async def catalog_loaded(db: asyncpg.Connection) -> list[Action]:
    await upsert_actions(db, TEST_ACTIONS)
    return TEST_ACTIONS


@pytest.fixture
async def app(
    settings: Settings, catalog_loaded: list[Action], redis: Redis
) -> AsyncIterator[TestAppProtocol]:
    quart_app = create_app(settings)
    async with quart_app.test_app() as test_app:
        yield test_app


@pytest.fixture
def client(app: TestAppProtocol) -> TestClientProtocol:
    return app.test_client()


def services_of(app: TestAppProtocol | Quart) -> Services:
    quart_app = app.app if hasattr(app, "app") else app  # type: ignore[union-attr]
    found: Services = quart_app.extensions["leaderboard"]
    return found


@dataclass(frozen=True)
class Player:
    identity: Identity
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def user_id(self) -> str:
        return self.identity.user_id


@pytest.fixture
def make_player(db: asyncpg.Connection, settings: Settings):  # type: ignore[no-untyped-def]
    async def make(name: str | None = None) -> Player:
        identity = await ensure_user(db, name or f"p_{uuid.uuid4().hex[:10]}")
        token = issue_access_token(identity, settings.jwt_key, settings.access_token_ttl_seconds)
        return Player(identity, token)

    return make


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(__file__).parent / "artifacts"
    path.mkdir(exist_ok=True)
    return path
