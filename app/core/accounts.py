"""Accounts: registration, login, and refresh-token rotation.

Refresh tokens are random strings stored as SHA-256 hashes. Each use rotates it: the old one
stops working, and presenting a used one again (a stolen copy) revokes its whole family.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from app.core.passwords import Passwords
from app.core.settings import Settings
from app.core.tokens import Identity, issue_access_token
from app.http.errors import ApiError, rate_limited, unauthorized, validation_error
from app.redis.keys import Keys
from app.redis.rate_gate import RateLimiter, retry_after_seconds

USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,50}$")
MIN_PASSWORD, MAX_PASSWORD = 8, 128


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    identity: Identity

    def as_json(self) -> dict[str, Any]:
        return {
            "accessToken": self.access_token,
            "refreshToken": self.refresh_token,
            "tokenType": "Bearer",
            "expiresIn": self.expires_in,
            "user": {"userId": self.identity.user_id, "username": self.identity.username},
        }


def check_username(username: str) -> str:
    if not USERNAME.match(username):
        raise validation_error(
            "A username is 3-50 characters: letters, digits, '_', '.' or '-'.", field="username"
        )
    return username


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise validation_error(
            f"A password is {MIN_PASSWORD}-{MAX_PASSWORD} characters.", field="password"
        )
    return password


async def create_user(
    conn: asyncpg.Connection | asyncpg.Pool, username: str, password_hash: str | None
) -> Identity:
    try:
        row = await conn.fetchrow(
            "INSERT INTO users (username, password_hash) VALUES ($1, $2) RETURNING id::text",
            username,
            password_hash,
        )
    except asyncpg.UniqueViolationError:
        raise ApiError(
            409,
            "USERNAME_TAKEN",
            f"The username {username!r} is taken.",
            details={"field": "username"},
        ) from None
    return Identity(row["id"], username)


async def ensure_user(conn: asyncpg.Connection | asyncpg.Pool, username: str) -> Identity:
    """The user named ``username``, created without a password if missing (operators, tests)."""
    row = await conn.fetchrow(
        """
        WITH created AS (
            INSERT INTO users (username) VALUES ($1)
            ON CONFLICT (lower(username)) DO NOTHING
            RETURNING id::text, username
        )
        SELECT id, username FROM created
        UNION ALL
        SELECT id::text, username FROM users WHERE lower(username) = lower($1)
        LIMIT 1
        """,
        check_username(username),
    )
    return Identity(row["id"], row["username"])


async def register(
    pool: asyncpg.Pool, passwords: Passwords, username: str, password: str
) -> Identity:
    check_username(username)
    check_password(password)
    return await create_user(pool, username, await passwords.hash(password))


async def login(
    *,
    pool: asyncpg.Pool,
    passwords: Passwords,
    limiter: RateLimiter,
    keys: Keys,
    settings: Settings,
    username: str,
    password: str,
    client: str,
) -> TokenPair:
    # Both limits count every attempt: one stops guessing at one account from many places,
    # the other stops one place from spraying many accounts.
    for key, limit in (
        (keys.login_limit_user(username), settings.login_attempts_per_minute),
        (keys.login_limit_client(client), settings.login_attempts_per_client_per_minute),
    ):
        decision = await limiter.hit(key, limit)
        if not decision.allowed:
            raise rate_limited(retry_after_seconds(decision))
    if len(password) > MAX_PASSWORD or len(username) > 50:
        raise unauthorized("Wrong username or password.")
    row = await pool.fetchrow(
        "SELECT id::text, username, password_hash FROM users WHERE lower(username) = lower($1)",
        username,
    )
    stored_hash = row["password_hash"] if row else None
    if not await passwords.verify(stored_hash, password) or row is None:
        raise unauthorized("Wrong username or password.")
    identity = Identity(row["id"], row["username"])
    return await issue_pair(pool, settings, identity, family=str(uuid.uuid4()))


async def refresh(pool: asyncpg.Pool, settings: Settings, refresh_token: str) -> TokenPair:
    if not refresh_token or len(refresh_token) > 200:
        raise unauthorized("The refresh token is invalid.")
    digest = _digest(refresh_token)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """
            UPDATE refresh_tokens t SET used_at = now()
              FROM users u
             WHERE t.token_hash = $1 AND u.id = t.user_id
               AND t.used_at IS NULL AND NOT t.revoked AND t.expires_at > now()
            RETURNING t.user_id::text, t.family::text, u.username
            """,
            digest,
        )
        if row is None:
            # A used token presented again means a copy is in other hands: end the family.
            await conn.execute(
                """
                UPDATE refresh_tokens SET revoked = true
                 WHERE family = (SELECT family FROM refresh_tokens
                                  WHERE token_hash = $1 AND used_at IS NOT NULL)
                """,
                digest,
            )
    if row is None:
        raise unauthorized("The refresh token is invalid, expired or already used; log in again.")
    identity = Identity(row["user_id"], row["username"])
    return await issue_pair(pool, settings, identity, family=row["family"])


async def issue_pair(
    pool: asyncpg.Pool, settings: Settings, identity: Identity, *, family: str
) -> TokenPair:
    token = secrets.token_urlsafe(32)
    await pool.execute(
        """
        INSERT INTO refresh_tokens (token_hash, user_id, family, expires_at)
        VALUES ($1, $2, $3, now() + make_interval(secs => $4))
        """,
        _digest(token),
        identity.user_id,
        family,
        settings.refresh_token_ttl_seconds,
    )
    access = issue_access_token(identity, settings.jwt_secret, settings.access_token_ttl_seconds)
    return TokenPair(access, token, settings.access_token_ttl_seconds, identity)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
