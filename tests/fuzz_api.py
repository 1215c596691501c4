"""Fuzz the running API against its own OpenAPI document with schemathesis (every check).

    python -m tests.fuzz_api [--max-examples N] [--seed S]

Starts what it needs, as the test suite does: PostgreSQL and Redis from TEST_DATABASE_URL /
TEST_REDIS_URL when set, else the embedded servers from pip wheels; a fresh database with the
demo catalog; `leaderboard serve` on a free port of 127.0.0.1 with limits generous enough for a
fuzzer (429 is documented all the same); and a bearer token from `leaderboard token`. The exit
code is schemathesis's: 0 only when it found nothing. Bounded: a fixed number of cases per
operation, a fixed seed, and a wall-clock timeout on the whole schemathesis run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from app.core.catalog import demo_catalog_path, parse_catalog_file
from app.db.actions import upsert_actions
from app.db.migrations import migrate
from tests.conftest import database_url_for
from tests.support.server_process import ServerProcess

CONFIG = Path(__file__).with_name("schemathesis.toml")
TIMEOUT_SECONDS = 900
# JSON log lines at ERROR or above (app/obs/logging_setup.py).
ERRORS = ('"level":"error"', '"level":"critical"')


@contextlib.contextmanager
def backing_servers(scratch: Path) -> Iterator[tuple[str, str]]:
    """(admin database URL, Redis URL): the environment's, else embedded ones."""
    database_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    with contextlib.ExitStack() as stack:
        if not database_url or not redis_url:
            from app.dev.servers import EmbeddedPostgres, EmbeddedRedis

            if not database_url:
                postgres = EmbeddedPostgres(scratch / "postgres", durable=False)
                postgres.start()
                stack.callback(postgres.stop)
                database_url = postgres.url
            if not redis_url:
                redis = EmbeddedRedis(scratch / "redis")
                redis.start()
                stack.callback(redis.stop)
                redis_url = redis.url
        yield database_url, redis_url


async def create_database(admin_url: str, name: str) -> str:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = database_url_for(admin_url, name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await upsert_actions(conn, parse_catalog_file(demo_catalog_path()))
    finally:
        await conn.close()
    return url


async def clean_up(admin_url: str, redis_url: str, name: str) -> None:
    """Drop the database and the Redis keys of this run (the servers may be shared)."""
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    redis = Redis.from_url(redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"*{name}*", count=1000)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


def mint_token(env: dict[str, str], name: str = "fuzzer") -> str:
    return _cli(env, "token", name)


def _cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli.main", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def credentials_for_other_operations(env: dict[str, str]) -> dict[str, str]:
    """What tests/schemathesis.toml hands particular operations instead of the fuzzer's token:
    an API key for server awards, and another user's token for logout-all (which would
    otherwise end the fuzzer's own session for every operation after it)."""
    return {
        "LB_FUZZ_API_KEY": _cli(env, "apikeys", "create", "fuzzer", "--scope", "award"),
        "LB_FUZZ_LOGOUT_TOKEN": mint_token(env, "fuzzer-logout"),
    }


def run_schemathesis(
    base_url: str, token: str, max_examples: int, seed: int, env: dict[str, str] | None = None
) -> int:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--request-timeout",
        "10",
    ]
    try:
        return subprocess.run(
            command, timeout=TIMEOUT_SECONDS, check=False, env={**os.environ, **(env or {})}
        ).returncode
    except subprocess.TimeoutExpired:
        print(f"schemathesis did not finish within {TIMEOUT_SECONDS} s", file=sys.stderr)
        return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--max-examples", type=int, default=45, help="cases per operation (45: ~500 in all)"
    )
    parser.add_argument("--seed", type=int, default=20261129)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="leaderboard-fuzz-"))
    name = f"lbfuzz_{secrets.token_hex(6)}"
    try:
        with backing_servers(scratch) as (admin_url, redis_url):
            database_url = asyncio.run(create_database(admin_url, name))
            env = {
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "REDIS_NAMESPACE": name,
                "JWT_SECRET": secrets.token_urlsafe(48),
                "RATE_LIMIT_PER_MINUTE": "100000",
                "LOGIN_ATTEMPTS_PER_MINUTE": "10000",
                "LOGIN_ATTEMPTS_PER_CLIENT_PER_MINUTE": "100000",
                "ACCESS_TOKEN_TTL_SECONDS": "3600",
                # Fast hashing: the fuzzer registers many accounts.
                "PASSWORD_TIME_COST": "1",
                "PASSWORD_MEMORY_KIB": "1024",
            }
            try:
                with ServerProcess(env, scratch) as server:
                    code = run_schemathesis(
                        server.base_url,
                        mint_token(env),
                        args.max_examples,
                        args.seed,
                        credentials_for_other_operations(env),
                    )
                    # Whatever the answers were, nothing the fuzzer sends may log an error.
                    errors = [
                        line for line in server.log().splitlines() if any(e in line for e in ERRORS)
                    ]
                    if errors:
                        print("the server logged errors:", *errors[:20], sep="\n", file=sys.stderr)
                        code = code or 1
                    return code
            finally:
                asyncio.run(clean_up(admin_url, redis_url, name))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
