"""POST /api/action/complete, GET /api/actions, GET /api/me."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, Field, JsonValue, StrictStr
from quart import Blueprint, Response
from quart_schema import document_response, security_scheme, tag, validate_request

from app.core import profile
from app.core.scoring import complete_action
from app.core.tokens import Identity
from app.http.errors import validation_error
from app.http.request import json_response, requires_identity, services

blueprint = Blueprint("scores", __name__, url_prefix="/api")


class CompleteRequest(BaseModel):
    actionId: StrictStr = Field(min_length=1, max_length=64, examples=["quiz_001"])
    # Action-specific data for validation; size-capped, never used to decide points.
    data: JsonValue = None


class CompleteResponse(BaseModel):
    success: bool
    pointsEarned: int
    newScore: int
    rank: int | None  # null: the award is recorded, but no rank could be read in time
    previousRank: int | None
    top10Changed: bool


@blueprint.post("/action/complete")
@tag(["scores"])
@security_scheme([{"bearer": []}])
@requires_identity
@validate_request(CompleteRequest)
@document_response(CompleteResponse)
async def complete(data: CompleteRequest, identity: Identity) -> Response:
    """Complete an action; the server decides the points (10 per minute per user)."""
    svc = services()
    if data.data is not None and len(orjson.dumps(data.data)) > svc.settings.max_action_data_bytes:
        raise validation_error(
            f"`data` is larger than {svc.settings.max_action_data_bytes} bytes.", field="data"
        )
    completion = await complete_action(
        identity=identity,
        action_id=data.actionId,
        store=svc.completions,
        catalog=svc.catalog,
        gate=svc.limiter,
        ranking=svc.leaderboard,
        limit_per_minute=svc.settings.rate_limit_per_minute,
    )
    return json_response(completion.as_json())


@blueprint.get("/actions")
@tag(["scores"])
async def list_actions() -> Response:
    """The action catalog: what can be completed and what each is worth."""
    actions: list[dict[str, Any]] = [a.as_json() for a in services().catalog.all()]
    return json_response({"actions": actions})


@blueprint.get("/me")
@tag(["scores"])
@security_scheme([{"bearer": []}])
@requires_identity
async def me(identity: Identity) -> Response:
    """The signed-in user's score, rank and completed actions (daily ones: today's)."""
    return json_response((await profile.load_profile(services().profiles, identity)).as_json())
