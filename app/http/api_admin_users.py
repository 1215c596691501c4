"""/api/admin/users/...: find a player, see their history, correct their score.

Every route is for admins only (``requires_admin``); every change is audited with its reason
in the transaction that makes it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr
from quart import Blueprint, current_app, request
from quart_schema import security_scheme, tag, validate_request, validate_response

from app.core import admin as core_admin
from app.core.admin import BanChange, Correction, HistoryEntry, UserSummary
from app.core.audit import REASON_MAX
from app.core.board_reads import board_standings, check_user_id
from app.core.errors import NotFound
from app.core.ranking import iso
from app.core.tokens import Identity
from app.db import admin as db_admin
from app.db.adjustments import PgCorrections
from app.db.bans import PgBans
from app.db.sessions import PgSessions
from app.http.admin_auth import ADMIN_ERRORS, requires_admin
from app.http.api_admin_audit import query_limit
from app.http.api_boards import StandingEntry
from app.http.openapi import errors, parameter
from app.http.request import services

blueprint = Blueprint("admin_users", __name__, url_prefix="/api/admin")

_USER_ID = ("userId", "path", "A user id (UUID).", {"type": "string", "format": "uuid"})
_BAD_ID = (400, "`VALIDATION_ERROR`: the user id is not a UUID.")
_NO_USER = (404, "`NOT_FOUND`: there is no such user.")


class Reason(BaseModel):
    reason: StrictStr = Field(
        min_length=1, max_length=REASON_MAX, description="Why (kept in the audit log)."
    )


class AdjustmentRequest(Reason):
    points: StrictInt = Field(
        ge=-core_admin.ADJUST_MAX,
        le=core_admin.ADJUST_MAX,
        description="Points to add (negative: to take away); not 0.",
        examples=[-50],
    )


class UserSummaryModel(BaseModel):
    userId: str
    username: str
    role: Literal["player", "admin"]
    score: int
    createdAt: str
    bannedAt: str | None = Field(description="When the player was banned; `null`: not banned.")

    @classmethod
    def of(cls, user: UserSummary) -> UserSummaryModel:
        return cls(
            userId=user.user_id,
            username=user.username,
            role=user.role,  # type: ignore[arg-type]  # the table's check constraint
            score=user.score,
            createdAt=iso(user.created_at),
            bannedAt=iso(user.banned_at) if user.banned_at else None,
        )


class UserSearchResponse(BaseModel):
    """Users whose name starts with the query (ignoring case), or whose id it is."""

    users: list[UserSummaryModel]


class HistoryEntryModel(BaseModel):
    id: str = Field(description="A completion's id is what `DELETE .../completions/{id}` takes.")
    kind: Literal["completion", "adjustment"]
    actionId: str | None
    actionName: str | None
    points: int
    createdAt: str
    reason: str | None = Field(description="An adjustment's reason; `null` for a completion.")

    @classmethod
    def of(cls, entry: HistoryEntry) -> HistoryEntryModel:
        return cls(
            id=entry.id,
            kind=entry.kind,  # type: ignore[arg-type]  # the table's check constraint
            actionId=entry.action_id,
            actionName=entry.action_name,
            points=entry.points,
            createdAt=iso(entry.created_at),
            reason=entry.reason,
        )


class UserDetailResponse(UserSummaryModel):
    """A user as an operator sees them: standing, boards now, and score history."""

    rank: int | None = Field(description="All-time rank; `null` without points, or banned.")
    banReason: str | None
    boards: list[StandingEntry]
    history: list[HistoryEntryModel] = Field(description="Newest first.")
    historyTotal: int


class BoardScoreModel(BaseModel):
    boardId: str
    period: str
    score: int = Field(description="The user's score there now (0: no longer on that board).")


class CorrectionResponse(BaseModel):
    """The user's standing after the correction."""

    userId: str
    username: str
    previousScore: int
    score: int = Field(description="The all-time score now.")
    newScore: int = Field(description="The same as `score` (the name a completion answers with).")
    points: int = Field(description="What the correction changed the all-time score by.")
    historyId: str = Field(description="The adjustment's history row, or the removed completion.")
    auditId: int
    boards: list[BoardScoreModel] = Field(
        description="The boards a removed completion counted on, with the user's score now."
    )
    actionId: str | None = None
    completedAt: str | None = None

    @classmethod
    def of(cls, done: Correction) -> CorrectionResponse:
        c = done.committed
        return cls(
            userId=c.user_id,
            username=c.username,
            previousScore=done.previous_score,
            score=c.score,
            newScore=c.score,
            points=c.points,
            historyId=done.history_id,
            auditId=done.audit_id,
            boards=[
                BoardScoreModel(boardId=b.board_id, period=b.period, score=b.score)
                for b in c.boards
            ],
            actionId=done.action_id,
            completedAt=iso(done.completed_at) if done.completed_at else None,
        )


@blueprint.get("/users")
@tag(["admin"])
@security_scheme([{"bearer": []}])
@requires_admin
@validate_response(UserSearchResponse)
@parameter(
    "query",
    "query",
    "The start of a username (any case), or a user id.",
    {"type": "string", "minLength": 1, "maxLength": 50},
    required=True,
)
@parameter(
    "limit",
    "query",
    "How many users at most.",
    {"type": "integer", "minimum": 1, "maximum": core_admin.SEARCH_MAX, "default": 20},
)
@errors(
    (400, "`VALIDATION_ERROR`: a missing or too long `query`, a bad `limit`."), *ADMIN_ERRORS, 500
)
async def search_users(admin: Identity) -> UserSearchResponse:
    """Find users by the start of their name, or by id."""
    query = core_admin.check_search(request.args.get("query"))
    limit = query_limit(request.args.get("limit"), 20, core_admin.SEARCH_MAX)
    found = await db_admin.search_users(services().pool, query, limit)
    return UserSearchResponse(users=[UserSummaryModel.of(u) for u in found])


@blueprint.get("/users/<userId>")
@tag(["admin"])
@security_scheme([{"bearer": []}])
@requires_admin
@validate_response(UserDetailResponse)
@parameter(*_USER_ID)
@parameter(
    "limit",
    "query",
    "How many history rows, newest first.",
    {"type": "integer", "minimum": 1, "maximum": core_admin.HISTORY_MAX, "default": 100},
)
@errors(_BAD_ID, *ADMIN_ERRORS, _NO_USER, 500)
async def user_detail(userId: str, admin: Identity) -> UserDetailResponse:
    """A user's standing, boards and score history (completion ids included)."""
    svc = services()
    user_id = check_user_id(userId)
    limit = query_limit(request.args.get("limit"), 100, core_admin.HISTORY_MAX)
    found = await db_admin.user_detail(svc.pool, user_id, limit)
    if found is None:
        raise NotFound(f"There is no user {user_id!r}.", userId=user_id)
    boards = await board_standings(svc.board_catalog, svc.boards_db, user_id, datetime.now(UTC))
    summary = UserSummaryModel.of(found.user)
    return UserDetailResponse(
        **summary.model_dump(),
        rank=found.rank,
        boards=[StandingEntry(**b) for b in boards],
        history=[HistoryEntryModel.of(h) for h in found.history],
        historyTotal=found.history_total,
        banReason=found.ban_reason,
    )


@blueprint.post("/users/<userId>/adjustments")
@tag(["admin"])
@security_scheme([{"bearer": []}])
@requires_admin
@validate_request(AdjustmentRequest)
@validate_response(CorrectionResponse)
@parameter(*_USER_ID)
@errors(
    (
        400,
        "`VALIDATION_ERROR` (`points` not a whole number in -10000..10000 or 0, `reason` "
        "missing or over 500 characters, a bad user id) or `SCORE_WOULD_BE_NEGATIVE` "
        "(carries `score` and `points`; nothing changed).",
    ),
    *ADMIN_ERRORS,
    _NO_USER,
    413,
    415,
    500,
)
async def adjust(userId: str, data: AdjustmentRequest, admin: Identity) -> CorrectionResponse:
    """Add or take away points on a user's all-time score, with a reason (audited)."""
    svc = services()
    done = await core_admin.adjust_score(
        admin=admin,
        user_id=check_user_id(userId),
        points=data.points,
        reason=data.reason,
        store=PgCorrections(svc.pool),
        ranking=svc.leaderboard,
    )
    return CorrectionResponse.of(done)


@blueprint.delete("/users/<userId>/completions/<completionId>")
@tag(["admin"])
@security_scheme([{"bearer": []}])
@requires_admin
@validate_request(Reason)
@validate_response(CorrectionResponse)
@parameter(*_USER_ID)
@parameter(
    "completionId", "path", "A completion's id (UUID).", {"type": "string", "format": "uuid"}
)
@errors(
    (
        400,
        "`VALIDATION_ERROR` (a bad id, `reason` missing or over 500 characters) or "
        "`SCORE_WOULD_BE_NEGATIVE` (adjustments since leave less than its points).",
    ),
    *ADMIN_ERRORS,
    (404, "`NOT_FOUND`: no such user, or the user has no such completion."),
    413,
    415,
    500,
)
async def remove_completion(
    userId: str, completionId: str, data: Reason, admin: Identity
) -> CorrectionResponse:
    """Remove one completion and its points from every board it counted on (audited)."""
    svc = services()
    done = await core_admin.remove_completion(
        admin=admin,
        user_id=check_user_id(userId),
        completion_id=completionId,
        reason=data.reason,
        store=PgCorrections(svc.pool),
        ranking=svc.leaderboard,
    )
    return CorrectionResponse.of(done)


class BanResponse(BaseModel):
    """The account's ban state after the request."""

    userId: str
    username: str
    banned: bool
    bannedAt: str | None
    changed: bool = Field(description="`false`: it already was so; nothing was recorded.")
    auditId: int | None

    @classmethod
    def of(cls, change: BanChange, banned: bool) -> BanResponse:
        return cls(
            userId=change.user_id,
            username=change.username,
            banned=banned,
            bannedAt=iso(change.banned_at) if change.banned_at else None,
            changed=change.changed,
            auditId=change.audit_id,
        )


async def _announce(user_id: str) -> None:
    """Tell this node and every other that the user's sessions changed (closes sockets)."""
    svc = services()
    revocation = await PgSessions(svc.pool).revocation_of(user_id)
    if revocation is not None:
        await svc.sessions.announce(revocation)


_BAN_ERRORS = (
    (400, "`VALIDATION_ERROR`: a bad user id, `reason` missing or over 500 characters."),
    *ADMIN_ERRORS,
    _NO_USER,
    413,
    415,
    500,
)


@blueprint.post("/users/<userId>/ban")
@tag(["admin"])
@security_scheme([{"bearer": []}])
@requires_admin
@validate_request(Reason)
@validate_response(BanResponse)
@parameter(*_USER_ID)
@errors(*_BAN_ERRORS)
async def ban(userId: str, data: Reason, admin: Identity) -> BanResponse:
    """Ban a player: off every board, refused at login, refresh and scoring, sockets closed."""
    svc = services()
    bans = PgBans(svc.pool)
    change = await core_admin.ban_user(
        admin=admin,
        user_id=check_user_id(userId),
        reason=data.reason,
        store=bans,
        roster=svc.leaderboard,
        announce=_announce,
        catalog=svc.board_catalog,
    )
    if change.changed:
        periods = core_admin.current_periods(svc.board_catalog, datetime.now(UTC))
        current_app.add_background_task(
            core_admin.sweep_banned,
            change.user_id,
            [(board, period) for board, period, _ in periods],
            is_banned=bans.is_banned,
            roster=svc.leaderboard,
        )
    return BanResponse.of(change, banned=True)


@blueprint.post("/users/<userId>/unban")
@tag(["admin"])
@security_scheme([{"bearer": []}])
@requires_admin
@validate_request(Reason)
@validate_response(BanResponse)
@parameter(*_USER_ID)
@errors(*_BAN_ERRORS)
async def unban(userId: str, data: Reason, admin: Identity) -> BanResponse:
    """Lift a ban: back on every board with their history; may log in again."""
    svc = services()
    change = await core_admin.unban_user(
        admin=admin,
        user_id=check_user_id(userId),
        reason=data.reason,
        store=PgBans(svc.pool),
        roster=svc.leaderboard,
        announce=_announce,
        catalog=svc.board_catalog,
    )
    return BanResponse.of(change, banned=False)
