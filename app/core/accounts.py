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

from app.core.errors import AccountBanned, InvalidInput, RateLimited, Unauthorized
from app.core.passwords import Passwords
from app.core.ports import AccountStore, RateGate, RateScope, retry_after_seconds
from app.core.settings import Settings
from app.core.tokens import Identity, issue_access_token

USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,50}$")
MIN_PASSWORD, MAX_PASSWORD = 8, 128


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    identity: Identity


def check_username(username: str) -> str:
    if not USERNAME.fullmatch(username):
        raise InvalidInput(
            "A username is 3-50 characters: letters, digits, '_', '.' or '-'.", field="username"
        )
    return username


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"A password is {MIN_PASSWORD}-{MAX_PASSWORD} characters.", field="password"
        )
    return password


async def register(
    accounts: AccountStore, passwords: Passwords, username: str, password: str
) -> Identity:
    check_username(username)
    check_password(password)
    return await accounts.create(username, await passwords.hash(password))


async def login(
    *,
    accounts: AccountStore,
    passwords: Passwords,
    gate: RateGate,
    settings: Settings,
    username: str,
    password: str,
    client: str,
) -> TokenPair:
    # Both limits count every attempt: one stops guessing at one account from many places,
    # the other stops one place from spraying many accounts.
    for scope, subject, limit in (
        (RateScope.LOGIN_USER, username, settings.login_attempts_per_minute),
        (RateScope.LOGIN_CLIENT, client, settings.login_attempts_per_client_per_minute),
    ):
        verdict = await gate.hit(scope, subject, limit)
        if not verdict.allowed:
            raise RateLimited(retry_after_seconds(verdict))
    if len(password) > MAX_PASSWORD or len(username) > 50:
        raise Unauthorized("Wrong username or password.")
    stored = await accounts.find_login(username)
    stored_hash = stored.password_hash if stored else None
    # Verify even for an unknown user (against no hash), so timing does not tell who exists.
    if not await passwords.verify(stored_hash, password) or stored is None:
        raise Unauthorized("Wrong username or password.")
    if stored.banned:
        raise AccountBanned()  # only to whoever knows the password
    return await issue_pair(accounts, settings, stored.identity, family=str(uuid.uuid4()))


async def refresh(accounts: AccountStore, settings: Settings, refresh_token: str) -> TokenPair:
    if not refresh_token or len(refresh_token) > 200:
        raise Unauthorized("The refresh token is invalid.")
    used = await accounts.use_refresh_token(_digest(refresh_token))
    if used is None:
        raise Unauthorized("The refresh token is invalid, expired or already used; log in again.")
    identity, family = used
    return await issue_pair(accounts, settings, identity, family=family)


def refresh_digest(refresh_token: str) -> bytes | None:
    """How a refresh token is stored; None for one that cannot be valid (too long)."""
    if not refresh_token or len(refresh_token) > 200:
        return None
    return _digest(refresh_token)


async def issue_pair(
    accounts: AccountStore, settings: Settings, identity: Identity, *, family: str
) -> TokenPair:
    token = secrets.token_urlsafe(32)
    await accounts.add_refresh_token(
        _digest(token), identity.user_id, family, settings.refresh_token_ttl_seconds
    )
    access = issue_access_token(identity, settings.jwt_key, settings.access_token_ttl_seconds)
    return TokenPair(access, token, settings.access_token_ttl_seconds, identity)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
