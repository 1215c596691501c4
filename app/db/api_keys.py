"""SQL of ``api_keys``: game servers' keys, stored as SHA-256 digests, scoped, revocable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from app.core.awards import ApiKey

FIND_SQL = """
SELECT id::text, name, scopes FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL
"""


@dataclass(frozen=True)
class ApiKeyListing:
    """What ``leaderboard apikeys list`` shows: never the key (only its digest is stored)."""

    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


class NameTaken(Exception):
    pass


async def create_key(
    conn: asyncpg.Connection | asyncpg.Pool, name: str, digest: bytes, scopes: list[str]
) -> ApiKey:
    try:
        row = await conn.fetchrow(
            "INSERT INTO api_keys (name, key_hash, scopes) VALUES ($1, $2, $3)"
            " RETURNING id::text, name, scopes",
            name,
            digest,
            sorted(set(scopes)),
        )
    except asyncpg.UniqueViolationError:
        raise NameTaken(name) from None
    return ApiKey(row["id"], row["name"], tuple(row["scopes"]))


async def list_keys(conn: asyncpg.Connection | asyncpg.Pool) -> list[ApiKeyListing]:
    rows = await conn.fetch(
        "SELECT name, scopes, created_at, revoked_at FROM api_keys ORDER BY created_at, name"
    )
    return [
        ApiKeyListing(r["name"], tuple(r["scopes"]), r["created_at"], r["revoked_at"]) for r in rows
    ]


async def revoke_key(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> bool:
    """Revoke the key named ``name``; False when there is no such key (revoking twice is
    fine: the first moment stays)."""
    found = await conn.fetchval(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE name = $1 RETURNING id",
        name,
    )
    return found is not None


class PgApiKeys:
    """The ApiKeyStore port on a PostgreSQL pool: one indexed lookup per request, so a
    revoked key is refused from the next request on, on every node."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def find(self, digest: bytes) -> ApiKey | None:
        row = await self._pool.fetchrow(FIND_SQL, digest)
        return None if row is None else ApiKey(row["id"], row["name"], tuple(row["scopes"]))
