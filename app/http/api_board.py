"""GET /api/leaderboard: the current top 10, served from memory."""

from __future__ import annotations

from pydantic import BaseModel, Field
from quart import Blueprint, Response, request
from quart_schema import document_response, tag

from app.http.openapi import errors, parameter, raw_response
from app.http.request import services

blueprint = Blueprint("board", __name__, url_prefix="/api")


class BoardUser(BaseModel):
    userId: str
    username: str
    score: int
    rank: int = Field(ge=1)


class BoardResponse(BaseModel):
    """The top 10 (at most), with an `ETag` header to send back in `If-None-Match`."""

    users: list[BoardUser] = Field(max_length=10)
    updatedAt: str | None
    version: int
    epoch: str


# Documented, not validated: the body is bytes built once per change (app/core/board.py),
# so the hottest read never passes through pydantic. tests/test_openapi.py checks the bytes
# against this model instead.
@blueprint.get("/leaderboard")
@tag(["leaderboard"])
@document_response(BoardResponse)
@raw_response(304, "Not modified: `If-None-Match` named the current `ETag`. No body.")
@parameter("If-None-Match", "header", "The `ETag` of a board read before.")
@errors(500)
async def leaderboard() -> Response:
    """The top 10 by score; equal scores share a rank, earlier reachers listed first."""
    snapshot = await services().leaderboard.snapshot()
    if request.headers.get("If-None-Match") == snapshot.etag:
        response = Response(b"", status=304)
        del response.headers["Content-Type"]  # nothing follows, so no type (not text/html)
    else:
        response = Response(snapshot.body, content_type="application/json")
    response.headers["ETag"] = snapshot.etag
    response.headers["Cache-Control"] = "no-cache"
    return response
