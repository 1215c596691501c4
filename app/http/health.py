"""Readiness: can this node serve? PostgreSQL answers with the schema this build expects, and
Redis answers. ``/healthz`` (liveness) asks nothing of either, so a database outage never
gets a healthy process restarted; ``/readyz`` is what a balancer or orchestrator routes by."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.db.migrations import available_migrations, current_version

CHECK_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, str] = field(default_factory=dict)  # name -> "ok" or what is wrong

    @property
    def ready(self) -> bool:
        return all(v == "ok" for v in self.checks.values())


async def readiness(pool: asyncpg.Pool, redis: Redis) -> Readiness:
    postgres, redis_check = await asyncio.gather(_postgres(pool), _redis(redis))
    return Readiness({**postgres, "redis": redis_check})


async def _postgres(pool: asyncpg.Pool) -> dict[str, str]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS), pool.acquire() as conn:
            version = await current_version(conn)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        reason = f"unreachable: {type(error).__name__}"
        return {"postgres": reason, "migrations": "unknown (postgres unreachable)"}
    expected = available_migrations()[-1].version
    migrations = "ok" if version == expected else f"at {version}, this build needs {expected}"
    return {"postgres": "ok", "migrations": migrations}


async def _redis(redis: Redis) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await redis.ping()
    except (RedisError, OSError, TimeoutError) as error:
        return f"unreachable: {type(error).__name__}"
    return "ok"
