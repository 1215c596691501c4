"""GET /api/leaderboard: a board's top 10 (served from memory), its pages, and around a player.

Without a query the answer is today's, byte for byte (and usually answered before Quart by
app/edge/board_http.py). ``board`` and ``period`` name another board or a past period;
``limit``/``cursor`` turn the answer into a page; ``around`` into a player's neighbourhood.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from pydantic import BaseModel, Field, RootModel
from quart import Blueprint, Response, request
from quart_schema import document_response, tag

from app.core import board_reads
from app.core.board import Snapshot
from app.core.board_reads import Around, BoardPage, Selection
from app.core.boards import PAGE_MAX, RADIUS_MAX, check_limit, check_radius, decode_cursor
from app.core.ports import RankedRow
from app.core.ranking import TOP_N
from app.http.openapi import errors, parameter, raw_response
from app.http.request import authenticate, services

blueprint = Blueprint("board", __name__, url_prefix="/api")

# The query parameters that make a request more than the plain top-10 read.
BOARD_PARAMETERS = ("board", "period", "limit", "cursor", "around", "radius")
# Longer values are not ids we made; they are cut before they reach an error message.
_MAX_PARAMETER = 200


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


class NamedBoardResponse(BoardResponse):
    """`?board=` (and `&period=`): the top 10 of that board's period. A past period is read
    from the database: version 0 of epoch "0"."""

    board: str
    period: str


class PageResponse(BaseModel):
    """`&limit=` / `&cursor=`: a page of the board in ranking order, each row with its shared
    rank. `nextCursor` continues right after the last row (null on the last page)."""

    board: str
    period: str
    users: list[BoardUser] = Field(max_length=PAGE_MAX)
    total: int = Field(ge=0, description="Players ranked on this board in this period.")
    nextCursor: str | None


class AroundResponse(BaseModel):
    """`&around=`: the player's row with up to `radius` rows above and below it."""

    board: str
    period: str
    userId: str
    users: list[BoardUser] = Field(max_length=2 * RADIUS_MAX + 1)
    total: int = Field(ge=0)


class LeaderboardResponse(
    RootModel[BoardResponse | NamedBoardResponse | PageResponse | AroundResponse]
):
    """Which shape depends on the query: none of the board parameters, `board`/`period`,
    `limit`/`cursor`, or `around`."""


@blueprint.get("/leaderboard")
@tag(["leaderboard"])
@document_response(LeaderboardResponse)
@raw_response(304, "Not modified: `If-None-Match` named the current `ETag`. No body.")
@parameter("If-None-Match", "header", "The `ETag` of a board read before.")
@parameter(
    "board",
    "query",
    "A board id from `GET /api/boards` (default `all-time`).",
    {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,39}$", "examples": ["weekly"]},
)
@parameter(
    "period",
    "query",
    "A period of the board (default: the current one): `all`, `2026-11-29`, `2026-W48`, "
    "`2026-11`, or a tournament's id.",
    {
        "type": "string",
        "pattern": (
            "^(all|[0-9]{4}-W[0-9]{2}|[0-9]{4}-[0-9]{2}(-[0-9]{2})?|[a-z0-9][a-z0-9-]{0,39})$"
        ),
        "examples": ["2026-W47"],
    },
)
@parameter(
    "limit",
    "query",
    "Rows per page (turns the answer into a page).",
    {"type": "integer", "minimum": 1, "maximum": PAGE_MAX, "default": 10},
)
@parameter(
    "cursor",
    "query",
    "The previous page's `nextCursor` (opaque; valid for its board and period only).",
    {"type": "string", "maxLength": 200},
)
@parameter(
    "around",
    "query",
    "`me` (needs the bearer token) or a user id: that player's row and neighbours.",
    {"type": "string", "pattern": "^(me|[0-9a-fA-F-]{36})$", "examples": ["me"]},
)
@parameter(
    "radius",
    "query",
    "Rows above and below the player (with `around`).",
    {"type": "integer", "minimum": 0, "maximum": RADIUS_MAX, "default": 5},
)
@errors(
    (
        400,
        "`VALIDATION_ERROR`: a malformed `period`, `limit`, `radius`, `around` or `cursor` "
        "(a cursor of another board or period too); `field` names it.",
    ),
    (401, "`UNAUTHORIZED` or `TOKEN_EXPIRED`: `around=me` without a valid access token."),
    (403, "`ACCOUNT_BANNED`: `around=me` with the token of a banned account."),
    (
        404,
        "`BOARD_NOT_FOUND` (no such board) or `NOT_RANKED` (the player has no points there; "
        "carries `total`).",
    ),
    500,
)
async def leaderboard() -> Response:
    """A board's top 10, a page of it, or the rows around a player; equal scores share a
    rank, earlier reachers listed first."""
    args = {
        name: request.args[name][:_MAX_PARAMETER]
        for name in BOARD_PARAMETERS
        if name in request.args
    }
    if not args:
        return _cached(await services().leaderboard.snapshot(), board_named=False)
    svc = services()
    # Every parameter given is checked, used or not (a radius without around is still a
    # radius out of range); then the query decides what is read.
    limit = check_limit(args.get("limit"))
    radius = check_radius(args.get("radius"))
    selection = board_reads.select(
        svc.board_catalog, args.get("board"), args.get("period"), datetime.now(UTC)
    )
    if "cursor" in args:
        decode_cursor(args["cursor"], selection.board.id, selection.period.id)
    if "around" in args:
        target = args["around"]
        user_id = authenticate().user_id if target == "me" else board_reads.check_user_id(target)
        found = await board_reads.read_around(
            selection, svc.board_cache, svc.boards_db, user_id, radius
        )
        return _raw(around_body(found))
    if "limit" in args or "cursor" in args:
        page = await board_reads.read_page(
            selection, svc.board_cache, svc.boards_db, limit, args.get("cursor")
        )
        return _raw(page_body(page))
    return await _top(selection)


async def _top(selection: Selection) -> Response:
    """The top 10 of the selected board and period."""
    svc = services()
    if selection.current:
        return _cached(await svc.board_cache.snapshot(selection.board.id), board_named=True)
    run = await svc.boards_db.page(selection.board.id, selection.period.id, TOP_N, None)
    return _json(NamedBoardResponse.model_validate(board_reads.archived_top(selection, run)))


def _cached(snapshot: Snapshot, *, board_named: bool) -> Response:
    if board_named and snapshot.epoch == "0":
        # Read from PostgreSQL, not a published message: no version to validate against.
        return Response(snapshot.board_body, content_type="application/json")
    if request.headers.get("If-None-Match") == snapshot.etag:
        response = Response(b"", status=304)
        del response.headers["Content-Type"]  # nothing follows, so no type (not text/html)
    else:
        body = snapshot.board_body if board_named else snapshot.body
        response = Response(body, content_type="application/json")
    response.headers["ETag"] = snapshot.etag
    response.headers["Cache-Control"] = "no-cache"
    return response


def _json(model: BaseModel) -> Response:
    return Response(model.model_dump_json(), content_type="application/json")


def _raw(body: bytes) -> Response:
    return Response(body, content_type="application/json")


# Pages and around answers are built with orjson, in their models' field order, not through
# pydantic: for 100 rows that is about a sixth of the CPU, at rates of 1,000 reads/s.
# tests/test_api_boards.py checks the bytes against PageResponse and AroundResponse.


def _rows(rows: list[RankedRow]) -> list[dict[str, object]]:
    return [
        {"userId": r.user_id, "username": r.username, "score": r.score, "rank": r.rank}
        for r in rows
    ]


def page_body(page: BoardPage) -> bytes:
    return orjson.dumps(
        {
            "board": page.board,
            "period": page.period,
            "users": _rows(page.rows),
            "total": page.total,
            "nextCursor": page.next_cursor,
        }
    )


def around_body(found: Around) -> bytes:
    return orjson.dumps(
        {
            "board": found.board,
            "period": found.period,
            "userId": found.user_id,
            "users": _rows(found.rows),
            "total": found.total,
        }
    )
