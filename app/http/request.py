"""Small helpers shared by the route modules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

from quart import current_app, request

from app.core.client_ip import client_ip
from app.core.errors import Unauthorized
from app.core.tokens import Identity, verify_access_token
from app.http.services import Services


def services() -> Services:
    found: Services = current_app.extensions["leaderboard"]
    return found


R = TypeVar("R")


def authenticate() -> Identity:
    """The caller's identity from ``Authorization: Bearer``; Unauthorized otherwise."""
    token = bearer_token(request.headers.get("Authorization"))
    return verify_access_token(token, services().settings.jwt_key)


def bearer_token(header: str | None) -> str:
    """The token in an ``Authorization: Bearer ...`` header."""
    if not header:
        raise Unauthorized()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Use the header `Authorization: Bearer <token>`.")
    return token.strip()


def requires_identity(handler: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Authenticate before anything else (a bad token is a 401 even when the body is bad too)
    and pass the caller's identity to the handler as ``identity``."""

    @wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> R:
        return await handler(*args, identity=authenticate(), **kwargs)

    return wrapper


def client_address() -> str:
    return client_ip(
        request.remote_addr or "unknown",
        request.headers.get("X-Forwarded-For"),
        services().settings.trusted_proxies,
    )
