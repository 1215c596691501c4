"""GET /api/leaderboard: the current top 10, served from memory."""

from __future__ import annotations

from pydantic import BaseModel
from quart import Blueprint, Response, request
from quart_schema import document_response, tag

from app.http.request import services

blueprint = Blueprint("board", __name__, url_prefix="/api")


class BoardUser(BaseModel):
    userId: str
    username: str
    score: int
    rank: int


class BoardResponse(BaseModel):
    users: list[BoardUser]
    updatedAt: str | None
    version: int
    epoch: str


@blueprint.get("/leaderboard")
@tag(["leaderboard"])
@document_response(BoardResponse)
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
