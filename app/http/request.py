"""Small helpers shared by the route modules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

from quart import current_app, request

from app.core.client_ip import client_ip
from app.core.sessions import bearer_token as bearer_token  # tests import it from here
from app.core.tokens import Identity
from app.http.openapi import errors
from app.http.services import Services


def services() -> Services:
    found: Services = current_app.extensions["leaderboard"]
    return found


R = TypeVar("R")


def authenticate() -> Identity:
    """The caller's identity from ``Authorization: Bearer``, through the account guard
    (app/core/sessions.py): Unauthorized, TokenExpired, SessionEnded, AccountGone or
    AccountBanned otherwise. The same check as every other surface, and no I/O."""
    token = bearer_token(request.headers.get("Authorization"))
    return services().sessions.guard.verify(token).identity


def requires_identity(handler: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Authenticate before anything else (a bad token is a 401 even when the body is bad too)
    and pass the caller's identity to the handler as ``identity``."""

    @wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> R:
        return await handler(*args, identity=authenticate(), **kwargs)

    # Every signed-in route can meet a banned account (the guard says so before anything).
    errors((403, BANNED))(wrapper)
    return wrapper


BANNED = "`ACCOUNT_BANNED`: the account is banned."


def client_address() -> str:
    return client_ip(
        request.remote_addr or "unknown",
        request.headers.get("X-Forwarded-For"),
        services().settings.trusted_proxies,
    )
