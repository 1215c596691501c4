"""GET /api/boards, GET /api/boards/{boardId}/periods, GET /api/users/{userId}."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from quart import Blueprint, request
from quart_schema import tag, validate_response

from app.core import board_reads
from app.core.boards import ALL_PERIOD, Board, Window
from app.core.errors import InvalidInput
from app.core.ranking import iso
from app.http.openapi import errors, parameter
from app.http.request import services

blueprint = Blueprint("boards", __name__, url_prefix="/api")

PERIODS_DEFAULT, PERIODS_MAX = 12, 100

WindowName = Literal["all", "day", "week", "month", "tournament"]


class BoardEntry(BaseModel):
    boardId: str
    name: str
    window: WindowName
    period: str | None = Field(description="The current period's id.")
    startsAt: str | None = Field(description="When the current period began (null for `all`).")
    endsAt: str | None = Field(description="When it ends, exclusive (null for `all`).")
    actionTag: str | None = Field(description="Only actions with this tag count (null: all).")

    @classmethod
    def of(cls, board: Board, now: datetime) -> BoardEntry:
        period = board.current_period(now)
        return cls(
            boardId=board.id,
            name=board.name,
            window=board.window.value,
            period=period.id if period else None,
            startsAt=iso(period.starts_at) if period and period.starts_at else None,
            endsAt=iso(period.ends_at) if period and period.ends_at else None,
            actionTag=board.action_tag,
        )


class BoardsResponse(BaseModel):
    """Every board counting now (running tournaments included), with its current period."""

    boards: list[BoardEntry]


class PeriodEntry(BaseModel):
    period: str
    startsAt: str | None
    endsAt: str | None
    current: bool


class PeriodsResponse(BaseModel):
    """The board's periods that have scores, newest first (read any with `?period=`)."""

    board: str
    periods: list[PeriodEntry]


class StandingEntry(BaseModel):
    boardId: str
    period: str
    score: int
    rank: int = Field(ge=1)


class RecentEntry(BaseModel):
    actionId: str
    name: str
    pointsEarned: int
    completedAt: str


class UserResponse(BaseModel):
    """A player as anyone may see them: their boards now, and their last 20 completions."""

    userId: str
    username: str
    createdAt: str
    boards: list[StandingEntry] = Field(
        description="Each board's current period where the player has points."
    )
    recent: list[RecentEntry] = Field(max_length=board_reads.RECENT_COMPLETIONS)

    @classmethod
    def of(cls, found: dict[str, Any]) -> UserResponse:
        return cls.model_validate(found)


@blueprint.get("/boards")
@tag(["leaderboard"])
@validate_response(BoardsResponse)
async def list_boards() -> BoardsResponse:
    """The boards counting now: all time, today, this week, this month, running tournaments."""
    now = datetime.now(UTC)
    found = services().board_catalog.open_at(now)
    return BoardsResponse(boards=[BoardEntry.of(board, now) for board, _ in found])


@blueprint.get("/boards/<boardId>/periods")
@tag(["leaderboard"])
@validate_response(PeriodsResponse)
@parameter("boardId", "path", "A board id.", {"type": "string", "maxLength": 40})
@parameter(
    "limit",
    "query",
    "How many periods, newest first.",
    {"type": "integer", "minimum": 1, "maximum": PERIODS_MAX, "default": PERIODS_DEFAULT},
)
@errors((400, "`VALIDATION_ERROR`: a malformed `limit`."), (404, "`BOARD_NOT_FOUND`."), 500)
async def list_periods(boardId: str) -> PeriodsResponse:
    """The periods of a board that have scores, newest first: its archive."""
    svc = services()
    board = svc.board_catalog.resolve(boardId[:40])
    limit = _periods_limit(request.args.get("limit"))
    current = board.current_period(datetime.now(UTC))
    if board.window is Window.ALL:
        ids = [ALL_PERIOD]
    else:
        ids = await svc.boards_db.periods(board.id, limit)
    entries = []
    for period_id in ids:
        period = board.parse_period(period_id)
        entries.append(
            PeriodEntry(
                period=period.id,
                startsAt=iso(period.starts_at) if period.starts_at else None,
                endsAt=iso(period.ends_at) if period.ends_at else None,
                current=current is not None and current.id == period.id,
            )
        )
    return PeriodsResponse(board=board.id, periods=entries)


def _periods_limit(value: str | None) -> int:
    if value is None:
        return PERIODS_DEFAULT
    if not value.isdigit() or len(value) > 3 or not 1 <= int(value) <= PERIODS_MAX:
        raise InvalidInput(f"`limit` is a whole number from 1 to {PERIODS_MAX}.", field="limit")
    return int(value)


@blueprint.get("/users/<userId>")
@tag(["leaderboard"])
@validate_response(UserResponse)
@parameter("userId", "path", "A user id (UUID).", {"type": "string", "format": "uuid"})
@errors(
    (400, "`VALIDATION_ERROR`: the user id is not a UUID."),
    (404, "`USER_NOT_FOUND`."),
    500,
)
async def user_profile(userId: str) -> UserResponse:
    """A player's public profile: name, boards (score and rank now), last completions."""
    svc = services()
    found = await board_reads.public_profile(
        svc.board_catalog, svc.boards_db, userId, datetime.now(UTC)
    )
    return UserResponse.of(found)
