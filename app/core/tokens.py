"""Access tokens: HS256 JWTs of 15 minutes, verified with the algorithm pinned.

Refresh tokens are opaque random strings kept hashed in PostgreSQL (see accounts.py).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from app.core.errors import TokenExpired, Unauthorized

ALGORITHM = "HS256"
ISSUER = "leaderboard"
_REQUIRED = ["exp", "iat", "sub", "iss"]


@dataclass(frozen=True)
class Identity:
    user_id: str
    username: str


def issue_access_token(identity: Identity, secret: str, ttl_seconds: int) -> str:
    now = int(time.time())
    claims = {
        "sub": identity.user_id,
        "username": identity.username,
        "iss": ISSUER,
        "typ": "access",
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_access_token(token: str, secret: str) -> Identity:
    """The identity in a valid token; TokenExpired or Unauthorized otherwise."""
    if not token or len(token) > 4096:
        raise Unauthorized()
    try:
        # algorithms is pinned: a token that names "none" or another algorithm is refused,
        # whatever its header says.
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": _REQUIRED},
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired() from None
    except jwt.PyJWTError:
        raise Unauthorized("The access token is invalid.") from None
    return _identity(claims)


def _identity(claims: dict[str, object]) -> Identity:
    subject, username = claims.get("sub"), claims.get("username")
    if claims.get("typ") != "access" or not isinstance(username, str):
        raise Unauthorized("The access token is invalid.")
    try:
        user_id = str(uuid.UUID(str(subject)))
    except ValueError:
        raise Unauthorized("The access token is invalid.") from None
    return Identity(user_id, username)
