"""POST /api/server/awards: game servers award actions with an API key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, Field, JsonValue, StrictStr
from quart import Blueprint, request
from quart_schema import security_scheme, tag, validate_request, validate_response

from app.core.awards import ApiKey, AwardRequest, authenticate_key, award_action
from app.core.errors import Unauthorized
from app.http.api_scores import CompleteResponse
from app.http.errors import ApiError, validation_error
from app.http.openapi import errors
from app.http.request import services

blueprint = Blueprint("server", __name__, url_prefix="/api/server")

R = TypeVar("R")


class AwardBody(BaseModel):
    userId: StrictStr = Field(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        examples=["6f1c0c1e-2f43-4d6a-9d59-6a3b1f0f0c11"],
        description="The player's user id (a UUID).",
    )
    actionId: StrictStr = Field(min_length=1, max_length=64, examples=["boss_defeated"])
    idempotencyKey: StrictStr = Field(
        min_length=1,
        max_length=255,
        pattern=r"^[^\x00]*$",
        examples=["match-8812-boss"],
        description="Unique per award for this API key: a retry with the same key (and the "
        "same body) answers with the original result and awards nothing more.",
    )
    data: JsonValue = Field(
        default=None, description="Anything the game server wants kept with it; at most 4 KiB."
    )


def requires_api_key(handler: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Check the API key before anything else (a bad key is a 401 whatever the body) and
    pass it to the handler as ``api_key``."""

    @wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> R:
        try:
            key = await authenticate_key(services().api_keys, request.headers.get("Authorization"))
        except Unauthorized as error:
            # The challenge names the scheme this endpoint takes (not Bearer).
            raise ApiError(
                401, error.code, error.message, headers={"WWW-Authenticate": "ApiKey"}
            ) from None
        return await handler(*args, api_key=key, **kwargs)

    return wrapper


@blueprint.post("/awards")
@tag(["server"])
@security_scheme([{"apiKey": []}])
@requires_api_key
@validate_request(AwardBody)
@validate_response(CompleteResponse)
@errors(
    (
        400,
        "`VALIDATION_ERROR` (a malformed body, `userId` not a UUID, `data` over 4 KiB), "
        "`INVALID_ACTION` (no such action, or retired) or `ALREADY_COMPLETED` (the user "
        "already has it in its current period; carries the original completion).",
    ),
    (401, "`UNAUTHORIZED`: no `Authorization: ApiKey <key>`, or an unknown or revoked key."),
    (
        403,
        "`FORBIDDEN`: the key lacks the `award` scope; `ACCOUNT_BANNED`: the user is banned.",
    ),
    (404, "`USER_NOT_FOUND`: no such user."),
    (
        409,
        "`IDEMPOTENCY_KEY_REUSED`: this API key already used the `idempotencyKey` for "
        "another request (another user, action or data).",
    ),
    413,
    415,
    (429, "`RATE_LIMIT_EXCEEDED`: over this API key's awards per minute (1,000 by default)."),
    500,
)
async def award(data: AwardBody, api_key: ApiKey) -> CompleteResponse:
    """Award an action to a user from a game server (any active action, `server`-only ones
    included; no verification). Answers like `POST /api/action/complete`; a repeated
    `idempotencyKey` answers with the original result."""
    svc = services()
    if data.data is not None and len(orjson.dumps(data.data)) > svc.settings.max_action_data_bytes:
        raise validation_error(
            f"`data` is larger than {svc.settings.max_action_data_bytes} bytes.", field="data"
        )
    body = await award_action(
        key=api_key,
        request=AwardRequest(data.userId, data.actionId, data.idempotencyKey, data.data),
        awards=svc.awards,
        completions=svc.completions,
        gate=svc.limiter,
        ranking=svc.leaderboard,
        limit_per_minute=svc.settings.api_key_awards_per_minute,
    )
    return CompleteResponse(**body)
