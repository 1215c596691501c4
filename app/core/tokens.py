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


@dataclass(frozen=True)
class VerifiedToken:
    """A valid access token: whose it is and when it was issued (ms since the epoch), which
    the session guard compares with the moment the user's sessions were ended."""

    identity: Identity
    issued_ms: int


# The issue time in milliseconds: `iat` counts whole seconds, and a session ended and a new
# login within the same second must still be told apart.
ISSUED_MS_CLAIM = "iat_ms"


def issue_access_token(identity: Identity, secret: str, ttl_seconds: int) -> str:
    now_ms = time.time_ns() // 1_000_000
    now = now_ms // 1000
    claims = {
        "sub": identity.user_id,
        "username": identity.username,
        "iss": ISSUER,
        "typ": "access",
        "iat": now,
        ISSUED_MS_CLAIM: now_ms,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_access_token(token: str, secret: str) -> Identity:
    """The identity in a valid token; TokenExpired or Unauthorized otherwise."""
    return verify_access_claims(token, secret).identity


def verify_access_claims(token: str, secret: str) -> VerifiedToken:
    """A valid token's identity and issue time; TokenExpired or Unauthorized otherwise."""
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
    return VerifiedToken(_identity(claims), _issued_ms(claims))


def _issued_ms(claims: dict[str, object]) -> int:
    issued_ms, issued = claims.get(ISSUED_MS_CLAIM), claims.get("iat")
    if isinstance(issued_ms, int) and not isinstance(issued_ms, bool):
        return issued_ms
    # A token without it (issued before it existed): the start of its second, so a session
    # ended later in that second refuses it.
    return int(issued) * 1000 if isinstance(issued, int | float) else 0


def _identity(claims: dict[str, object]) -> Identity:
    subject, username = claims.get("sub"), claims.get("username")
    if claims.get("typ") != "access" or not isinstance(username, str):
        raise Unauthorized("The access token is invalid.")
    try:
        user_id = str(uuid.UUID(str(subject)))
    except ValueError:
        raise Unauthorized("The access token is invalid.") from None
    return Identity(user_id, username)
