"""POST /api/auth/register, /api/auth/login, /api/auth/refresh."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictStr
from quart import Blueprint
from quart_schema import security_scheme, tag, validate_request, validate_response

from app.core import accounts
from app.core.accounts import TokenPair
from app.core.tokens import Identity
from app.http.openapi import errors, raw_response
from app.http.request import BANNED, client_address, requires_identity, services

blueprint = Blueprint("auth", __name__, url_prefix="/api/auth")

# PostgreSQL text cannot hold NUL, and some password hashers stop at one: refused up front.
NO_NUL = r"^[^\x00]*$"

# Exactly what registration accepts (app/core/accounts.py says the same in code).
NewUsername = Annotated[
    StrictStr,
    Field(min_length=3, max_length=50, pattern=accounts.USERNAME.pattern, examples=["alice"]),
]
NewPassword = Annotated[
    StrictStr,
    Field(
        min_length=accounts.MIN_PASSWORD,
        max_length=accounts.MAX_PASSWORD,
        pattern=NO_NUL,
        examples=["correct horse battery"],
    ),
]
# Login takes any name and password within the limits: a wrong one is a 401, not a 400, so
# that a name rule changed later cannot lock out older accounts.
Username = Annotated[StrictStr, Field(max_length=50, pattern=NO_NUL, examples=["alice"])]
Password = Annotated[
    StrictStr,
    Field(max_length=accounts.MAX_PASSWORD, pattern=NO_NUL, examples=["correct horse battery"]),
]


class Registration(BaseModel):
    username: NewUsername
    password: NewPassword


class Credentials(BaseModel):
    username: Username
    password: Password


class RefreshRequest(BaseModel):
    refreshToken: StrictStr = Field(max_length=200)


class Account(BaseModel):
    """The account."""

    userId: str
    username: str

    @classmethod
    def of(cls, identity: Identity) -> Account:
        return cls(userId=identity.user_id, username=identity.username)


class Tokens(BaseModel):
    """An access token (send it as `Authorization: Bearer ...`) and a one-use refresh token."""

    accessToken: str
    refreshToken: str
    tokenType: Literal["Bearer"]
    expiresIn: int = Field(description="Seconds the access token is valid for.")
    user: Account

    @classmethod
    def of(cls, pair: TokenPair) -> Tokens:
        return cls(
            accessToken=pair.access_token,
            refreshToken=pair.refresh_token,
            tokenType="Bearer",
            expiresIn=pair.expires_in,
            user=Account.of(pair.identity),
        )


@blueprint.post("/register")
@tag(["auth"])
@validate_request(Registration)
@validate_response(Account, 201)
@errors(400, 409, 413, 415, 500)
async def register(data: Registration) -> tuple[Account, int]:
    """Create an account (username 3-50 characters, password 8-128)."""
    svc = services()
    identity = await accounts.register(svc.accounts, svc.passwords, data.username, data.password)
    return Account.of(identity), 201


@blueprint.post("/login")
@tag(["auth"])
@validate_request(Credentials)
@validate_response(Tokens)
@errors(
    400,
    (401, "`UNAUTHORIZED`: wrong username or password (the same answer for both)."),
    (403, "`ACCOUNT_BANNED`: the password is right but the account is banned."),
    413,
    415,
    (429, "`RATE_LIMIT_EXCEEDED`: too many attempts for this username or from this client."),
    500,
)
async def login(data: Credentials) -> Tokens:
    """Exchange a username and password for an access token (15 min) and a refresh token."""
    svc = services()
    pair = await accounts.login(
        accounts=svc.accounts,
        passwords=svc.passwords,
        gate=svc.limiter,
        settings=svc.settings,
        username=data.username,
        password=data.password,
        client=client_address(),
    )
    return Tokens.of(pair)


@blueprint.post("/refresh")
@tag(["auth"])
@validate_request(RefreshRequest)
@validate_response(Tokens)
@errors(
    400,
    (401, "`UNAUTHORIZED`: the refresh token is unknown, expired or already used."),
    413,
    (403, BANNED),
    415,
    500,
)
async def refresh(data: RefreshRequest) -> Tokens:
    """Exchange a refresh token for a new pair; the old refresh token stops working."""
    svc = services()
    pair = await accounts.refresh(svc.accounts, svc.settings, data.refreshToken)
    return Tokens.of(pair)


@blueprint.post("/logout")
@tag(["auth"])
@validate_request(RefreshRequest)
@raw_response(204, "The session is over: its refresh token (and every rotation of it) is revoked.")
@errors(400, 413, 415, 500)
async def logout(data: RefreshRequest) -> tuple[str, int]:
    """End this session: revoke the refresh token's whole family. An unknown, used or
    already revoked token is answered 204 too (logging out twice is harmless). The access
    token stays valid until it expires (at most 15 min); to refuse it at once, use
    `/api/auth/logout-all`."""
    digest = accounts.refresh_digest(data.refreshToken)
    if digest is not None:
        await services().sessions.logout(digest)
    return "", 204


@blueprint.post("/logout-all")
@tag(["auth"])
@security_scheme([{"bearer": []}])
@requires_identity
@raw_response(
    204,
    "Every session of the user is over: all refresh tokens revoked, every access token "
    "issued until now refused, every live socket closed (4006) on every server.",
)
@errors((401, "`UNAUTHORIZED` (no valid access token) or `TOKEN_EXPIRED`."), 500)
async def logout_all(identity: Identity) -> tuple[str, int]:
    """Log out everywhere: on every device and server, within a second."""
    await services().sessions.end_all(identity.user_id)
    return "", 204
