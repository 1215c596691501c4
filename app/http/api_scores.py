"""POST /api/action/complete, GET /api/actions, GET /api/me."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, JsonValue, StrictStr
from quart import Blueprint
from quart_schema import security_scheme, tag, validate_request, validate_response

from app.core import profile
from app.core.board_reads import board_standings
from app.core.catalog import Action
from app.core.profile import Profile
from app.core.scoring import Completion
from app.core.tokens import Identity
from app.http import complete_flow
from app.http.api_boards import StandingEntry
from app.http.openapi import errors
from app.http.request import requires_identity, services

blueprint = Blueprint("scores", __name__, url_prefix="/api")

_SIGNED_IN = (401, "`UNAUTHORIZED` (no valid access token) or `TOKEN_EXPIRED`.")


class CompleteRequest(BaseModel):
    actionId: StrictStr = Field(min_length=1, max_length=64, examples=["quiz_001"])
    # Size-capped, never used to decide points: only whether the action happened.
    data: JsonValue = Field(
        default=None,
        description="The proof the action's `verification` asks for, at most 4 KiB as JSON: "
        '`{"answers": ["...", ...]}` for a `quiz` (one per question), `{"receipt": "<JWS>"}` '
        "for a `receipt` action; ignored for a `claim`.",
        examples=[{"answers": ["blue", "42"]}],
    )


class CompleteResponse(BaseModel):
    """The points the catalog awards, the new total and where it ranks."""

    success: Literal[True]
    pointsEarned: int
    newScore: int
    rank: int | None = Field(
        description="`null` only when the award is recorded but no rank could be read in time."
    )
    previousRank: int | None = Field(description="`null` when the user had no points before.")
    top10Changed: bool

    @classmethod
    def of(cls, completion: Completion) -> CompleteResponse:
        return cls(
            success=True,
            pointsEarned=completion.points_earned,
            newScore=completion.new_score,
            rank=completion.rank,
            previousRank=completion.previous_rank,
            top10Changed=completion.top10_changed,
        )


class CatalogEntry(BaseModel):
    actionId: str
    name: str
    description: str
    points: int = Field(ge=1, le=100)
    repeat: Literal["once", "daily"]
    verification: Literal["claim", "quiz", "receipt", "server"] = Field(
        description="How a completion is proved: `claim` (signing in is enough), `quiz` "
        "(`data.answers`), `receipt` (`data.receipt` from the game server) or `server` "
        "(only the game server awards it)."
    )
    questions: list[str] = Field(
        description="A `quiz` action's questions, in order (empty for other kinds). The "
        "answers are never listed."
    )

    @classmethod
    def of(cls, action: Action) -> CatalogEntry:
        # Built field by field: the answer key (Action.answers) has no way out.
        return cls(
            actionId=action.id,
            name=action.name,
            description=action.description,
            points=action.points,
            repeat=action.repeat,  # type: ignore[arg-type]  # the catalog loader checks it
            verification=action.verification,  # type: ignore[arg-type]  # likewise
            questions=list(action.questions),
        )


class CatalogResponse(BaseModel):
    """Every action that can be completed, and what it is worth."""

    actions: list[CatalogEntry]


class CompletionEntry(BaseModel):
    actionId: str
    completedAt: str
    pointsEarned: int


class MeResponse(BaseModel):
    """The signed-in user's standing."""

    userId: str
    username: str
    score: int
    rank: int | None = Field(description="`null` while the user has no points.")
    completions: list[CompletionEntry]
    boards: list[StandingEntry] = Field(
        description="Each board's current period where the user has points (as "
        "`GET /api/users/{userId}` shows them)."
    )

    @classmethod
    def of(cls, found: Profile, boards: list[dict[str, Any]]) -> MeResponse:
        return cls(
            userId=found.identity.user_id,
            username=found.identity.username,
            score=found.score,
            rank=found.rank,
            completions=[CompletionEntry(**entry) for entry in found.completions],
            boards=[StandingEntry(**entry) for entry in boards],
        )


@blueprint.post("/action/complete")
@tag(["scores"])
@security_scheme([{"bearer": []}])
@requires_identity
@validate_request(CompleteRequest)
@validate_response(CompleteResponse)
@errors(
    (
        400,
        "`VALIDATION_ERROR` (a malformed body, or `data` over 4 KiB), `INVALID_ACTION` (no such "
        "action, or retired), `ALREADY_COMPLETED` (carries the original completion) or "
        "`VERIFICATION_FAILED` (the quiz answers or the receipt did not hold; `reason` says "
        "why, e.g. `answers_wrong`, `receipt_expired`, `receipt_reused`).",
    ),
    _SIGNED_IN,
    (403, "`SERVER_ONLY_ACTION`: only the game server can award this action."),
    413,
    415,
    (429, "`RATE_LIMIT_EXCEEDED`: over the per-user limit of score updates per minute."),
    500,
    (
        503,
        "`COMMIT_OUTCOME_UNKNOWN`: sent to the database but not confirmed in time; it may or "
        "may not be recorded. Retrying is safe: a recorded one answers `ALREADY_COMPLETED`.",
    ),
)
async def complete(data: CompleteRequest, identity: Identity) -> CompleteResponse:
    """Complete an action; the server decides the points (10 per minute per user) and checks
    the proof the action's `verification` asks for."""
    completion = await complete_flow.complete(services(), identity, data.actionId, data.data)
    return CompleteResponse.of(completion)


@blueprint.get("/actions")
@tag(["scores"])
@validate_response(CatalogResponse)
async def list_actions() -> CatalogResponse:
    """The action catalog: what can be completed and what each is worth."""
    return CatalogResponse(actions=[CatalogEntry.of(a) for a in services().catalog.all()])


@blueprint.get("/me")
@tag(["scores"])
@security_scheme([{"bearer": []}])
@requires_identity
@validate_response(MeResponse)
@errors(_SIGNED_IN, 500)
async def me(identity: Identity) -> MeResponse:
    """The signed-in user's score, rank, completed actions (daily ones: today's) and boards."""
    svc = services()
    found = await profile.load_profile(svc.profiles, identity)
    boards = await board_standings(
        svc.board_catalog, svc.boards_db, identity.user_id, datetime.now(UTC)
    )
    return MeResponse.of(found, boards)
