"""POST /api/auth/register, /api/auth/login, /api/auth/refresh."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictStr
from quart import Blueprint
from quart_schema import tag, validate_request, validate_response

from app.core import accounts
from app.core.accounts import TokenPair
from app.core.tokens import Identity
from app.http.openapi import errors
from app.http.request import client_address, services

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
    415,
    500,
)
async def refresh(data: RefreshRequest) -> Tokens:
    """Exchange a refresh token for a new pair; the old refresh token stops working."""
    svc = services()
    pair = await accounts.refresh(svc.accounts, svc.settings, data.refreshToken)
    return Tokens.of(pair)
