"""SQL of receipt issuers (``issuers``): the game servers whose signed receipts prove a
completion (app/core/verification.py).

Each receipt looks its issuer up afresh (one indexed read, by primary key): a revoked issuer's
receipts are refused from the moment ``leaderboard issuers revoke`` commits, on every node.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from app.core.errors import DatabaseUnavailable
from app.core.ports import Issuer
from app.db.completions import DATABASE_ERRORS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IssuerListing:
    """An issuer as operators see it: never its secret."""

    name: str
    created_at: datetime
    revoked_at: datetime | None


async def create_issuer(conn: asyncpg.Connection, name: str, secret: str) -> bool:
    """Register an issuer; False when the name is taken, ignoring case (revoked names stay
    taken)."""
    created = await conn.fetchval(
        "INSERT INTO issuers (name, secret) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
        name,
        secret,
    )
    return bool(created)


async def list_issuers(conn: asyncpg.Connection) -> list[IssuerListing]:
    rows = await conn.fetch("SELECT name, created_at, revoked_at FROM issuers ORDER BY name")
    return [IssuerListing(r["name"], r["created_at"], r["revoked_at"]) for r in rows]


async def revoke_issuer(conn: asyncpg.Connection, name: str) -> datetime | None:
    """Revoke it (once: a second revoke keeps the first time); None when there is no such
    issuer."""
    revoked: datetime | None = await conn.fetchval(
        "UPDATE issuers SET revoked_at = COALESCE(revoked_at, now()) "
        "WHERE lower(name) = lower($1) RETURNING revoked_at",
        name,
    )
    return revoked


async def find_issuer(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> Issuer | None:
    row = await conn.fetchrow(
        "SELECT name, secret, revoked_at IS NOT NULL AS revoked FROM issuers WHERE name = $1",
        name,
    )
    return None if row is None else Issuer(row["name"], row["secret"], row["revoked"])


class PgIssuers:
    """The IssuerDirectory port on a PostgreSQL pool (the primary: a revocation counts at
    once, never after a replica's lag)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def find(self, name: str) -> Issuer | None:
        try:
            return await find_issuer(self._pool, name)
        except DATABASE_ERRORS as error:
            log.warning("issuer lookup failed: %r", error)
            raise DatabaseUnavailable() from error
