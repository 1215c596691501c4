"""``requires_admin``: the guard of every ``/api/admin/...`` endpoint.

The access token says who the caller is; the database says, on every request, whether they
are an admin now. A token carries no role, so revoking one takes effect at the next request
rather than when the token expires.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

from app.core.errors import AccountGone, Forbidden
from app.core.tokens import Identity
from app.db.admin import role_of
from app.http.request import authenticate, services

R = TypeVar("R")

# For `errors(...)` on every admin route (app/http/openapi.py): what the guard itself answers.
ADMIN_UNAUTHORIZED = (
    401,
    "`UNAUTHORIZED` (no token, a malformed, forged or revoked one, or a deleted account) or "
    "`TOKEN_EXPIRED`.",
)
ADMIN_FORBIDDEN = (
    403,
    "`FORBIDDEN`: the account is not an administrator (now); `ACCOUNT_BANNED`: it is banned.",
)
ADMIN_ERRORS = (ADMIN_UNAUTHORIZED, ADMIN_FORBIDDEN)


async def authenticate_admin() -> Identity:
    """The caller, if a valid bearer token names an account that is an admin right now."""
    identity = authenticate()  # 401 before anything else
    role = await role_of(services().pool, identity.user_id)
    if role is None:
        raise AccountGone()
    if role != "admin":
        raise Forbidden()
    return identity


def requires_admin(handler: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Authenticate an admin before anything else (a bad token is a 401 and a player a 403
    even when the body is bad too) and pass them to the handler as ``admin``."""

    @wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> R:
        return await handler(*args, admin=await authenticate_admin(), **kwargs)

    return wrapper
