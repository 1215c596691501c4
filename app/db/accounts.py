"""SQL of accounts: ``users`` (identity and password hash) and ``refresh_tokens``."""

from __future__ import annotations

import asyncpg

from app.core.accounts import check_username
from app.core.errors import AccountBanned, UsernameTaken
from app.core.ports import StoredLogin
from app.core.tokens import Identity

ENSURE_USER_SQL = """
WITH created AS (
    INSERT INTO users (username) VALUES ($1)
    ON CONFLICT (lower(username)) DO NOTHING
    RETURNING id::text, username
)
SELECT id, username FROM created
UNION ALL
SELECT id::text, username FROM users WHERE lower(username) = lower($1)
LIMIT 1
"""

USE_REFRESH_SQL = """
UPDATE refresh_tokens t SET used_at = now()
  FROM users u
 WHERE t.token_hash = $1 AND u.id = t.user_id
   AND t.used_at IS NULL AND NOT t.revoked AND t.expires_at > now()
RETURNING t.user_id::text, t.family::text, u.username, u.banned_at IS NOT NULL AS banned
"""

BANNED_HOLDER_SQL = """
SELECT EXISTS (SELECT FROM refresh_tokens t JOIN users u ON u.id = t.user_id
                WHERE t.token_hash = $1 AND u.banned_at IS NOT NULL)
"""

REVOKE_REUSED_FAMILY_SQL = """
UPDATE refresh_tokens SET revoked = true
 WHERE family = (SELECT family FROM refresh_tokens
                  WHERE token_hash = $1 AND used_at IS NOT NULL)
"""

ADD_REFRESH_SQL = """
INSERT INTO refresh_tokens (token_hash, user_id, family, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
"""


async def ensure_user(conn: asyncpg.Connection | asyncpg.Pool, username: str) -> Identity:
    """The user named ``username``, created without a password if missing (operators, tests)."""
    row = await conn.fetchrow(ENSURE_USER_SQL, check_username(username))
    return Identity(row["id"], row["username"])


async def set_password_hash(conn: asyncpg.Connection, user_id: str, password_hash: str) -> None:
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)


class PgAccounts:
    """The AccountStore port on a PostgreSQL pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, username: str, password_hash: str) -> Identity:
        try:
            row = await self._pool.fetchrow(
                "INSERT INTO users (username, password_hash) VALUES ($1, $2) RETURNING id::text",
                username,
                password_hash,
            )
        except asyncpg.UniqueViolationError:
            raise UsernameTaken(username) from None
        return Identity(row["id"], username)

    async def find_login(self, username: str) -> StoredLogin | None:
        row = await self._pool.fetchrow(
            "SELECT id::text, username, password_hash, banned_at IS NOT NULL AS banned"
            " FROM users WHERE lower(username) = lower($1)",
            username,
        )
        if row is None:
            return None
        return StoredLogin(
            Identity(row["id"], row["username"]), row["password_hash"], row["banned"]
        )

    async def add_refresh_token(
        self, digest: bytes, user_id: str, family: str, ttl_seconds: int
    ) -> None:
        await self._pool.execute(ADD_REFRESH_SQL, digest, user_id, family, ttl_seconds)

    async def use_refresh_token(self, digest: bytes) -> tuple[Identity, str] | None:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(USE_REFRESH_SQL, digest)
            if row is None and await conn.fetchval(BANNED_HOLDER_SQL, digest):
                raise AccountBanned()  # a ban revoked it: say why
            if row is None:
                # A used token presented again means a copy is in other hands: end the family.
                await conn.execute(REVOKE_REUSED_FAMILY_SQL, digest)
                return None
            if row["banned"]:
                raise AccountBanned()  # rolls back: the token is not spent
        return Identity(row["user_id"], row["username"]), row["family"]
