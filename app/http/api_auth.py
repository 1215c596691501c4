"""POST /api/auth/register, /api/auth/login, /api/auth/refresh."""

from __future__ import annotations

from pydantic import BaseModel, Field, StrictStr
from quart import Blueprint, Response
from quart_schema import document_response, tag, validate_request

from app.core import accounts
from app.http.request import client_address, json_response, services

blueprint = Blueprint("auth", __name__, url_prefix="/api/auth")


class Credentials(BaseModel):
    username: StrictStr = Field(max_length=50, examples=["alice"])
    password: StrictStr = Field(max_length=128, examples=["correct horse battery"])


class RefreshRequest(BaseModel):
    refreshToken: StrictStr = Field(max_length=200)


class Account(BaseModel):
    userId: str
    username: str


class Tokens(BaseModel):
    accessToken: str
    refreshToken: str
    tokenType: str
    expiresIn: int
    user: Account


@blueprint.post("/register")
@tag(["auth"])
@validate_request(Credentials)
@document_response(Account, 201)
async def register(data: Credentials) -> Response:
    """Create an account (username 3-50 characters, password 8-128)."""
    svc = services()
    identity = await accounts.register(svc.accounts, svc.passwords, data.username, data.password)
    return json_response({"userId": identity.user_id, "username": identity.username}, 201)


@blueprint.post("/login")
@tag(["auth"])
@validate_request(Credentials)
@document_response(Tokens)
async def login(data: Credentials) -> Response:
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
    return json_response(pair.as_json())


@blueprint.post("/refresh")
@tag(["auth"])
@validate_request(RefreshRequest)
@document_response(Tokens)
async def refresh(data: RefreshRequest) -> Response:
    """Exchange a refresh token for a new pair; the old refresh token stops working."""
    svc = services()
    pair = await accounts.refresh(svc.accounts, svc.settings, data.refreshToken)
    return json_response(pair.as_json())
