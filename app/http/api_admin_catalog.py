"""/api/admin/boards and /api/admin/actions: boards, tournaments and the action catalog.

The same rules as the command line: a board is checked by ``new_board`` (app/core/boards.py,
as ``leaderboard boards create``), an action by ``parse_action`` (app/core/catalog.py, as
``leaderboard actions load``). Every change is audited in the transaction that makes it, and
this node re-reads its copy of the boards and the catalog right after, so the change counts
here at once; every other node takes it within ``CATALOG_REFRESH_SECONDS`` (30 s by default).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr
from quart import Blueprint, request
from quart_schema import security_scheme, tag, validate_request, validate_response

from app.core import admin_catalog
from app.core.audit import REASON_MAX
from app.core.boards import BUILT_IN_IDS, Board, new_board
from app.core.catalog import Action
from app.core.errors import InvalidInput
from app.core.ranking import iso
from app.core.tokens import Identity
from app.db import admin_catalog as db_catalog
from app.db.actions import refresh_catalog
from app.db.boards import refresh_boards
from app.http.admin_auth import ADMIN_ERRORS, requires_admin
from app.http.api_auth import NO_NUL
from app.http.errors import validation_error
from app.http.openapi import errors, parameter
from app.http.request import services
from app.http.services import Services

blueprint = Blueprint("admin_catalog", __name__, url_prefix="/api/admin")

WindowName = Literal["all", "day", "week", "month", "tournament"]
Verification = Literal["claim", "quiz", "receipt", "server"]
_BOARD_ID = ("boardId", "path", "A board id.", {"type": "string", "maxLength": 40})
_ACTION_ID = ("actionId", "path", "An action id.", {"type": "string", "maxLength": 64})
_NO_BOARD = (404, "`BOARD_NOT_FOUND`.")
_NO_ACTION = (404, "`NOT_FOUND`: there is no such action.")
_REASON = Field(
    default=None,
    max_length=REASON_MAX,
    pattern=NO_NUL,
    description="Why (optional; kept in the audit log).",
)
# Every text a request carries: PostgreSQL text cannot hold NUL (refused here, not a 500).
Text = Annotated[StrictStr, Field(pattern=NO_NUL)]


# -- boards ---------------------------------------------------------------------------------------


class AdminBoard(BaseModel):
    """A board as an operator sees it: its definition and whether it counts now."""

    boardId: str
    name: str
    window: WindowName
    actionTag: str | None
    startsAt: str | None = Field(description="A tournament's start (null for other windows).")
    endsAt: str | None = Field(description="A tournament's end, exclusive.")
    endedAt: str | None = Field(description="When an operator ended it (null: not ended).")
    period: str | None = Field(description="The period counting now (null: none).")
    state: Literal["open", "closed", "ended"] = Field(
        description="`open`: counts now; `closed`: a tournament not running now; `ended`."
    )
    builtIn: bool = Field(description="One of all-time, daily, weekly, monthly: cannot end.")
    auditId: int | None = Field(default=None, description="The audit entry of this change.")

    @classmethod
    def of(cls, board: Board, now: datetime, audit_id: int | None = None) -> AdminBoard:
        period = board.current_period(now)
        return cls(
            boardId=board.id,
            name=board.name,
            window=board.window.value,
            actionTag=board.action_tag,
            startsAt=iso(board.starts_at) if board.starts_at else None,
            endsAt=iso(board.ends_at) if board.ends_at else None,
            endedAt=iso(board.ended_at) if board.ended_at else None,
            period=period.id if period else None,
            state="ended" if board.ended_at else ("open" if period else "closed"),
            builtIn=board.id in BUILT_IN_IDS,
            auditId=audit_id,
        )


class AdminBoards(BaseModel):
    """Every board, ended ones included: built-in first, then in the order they were made."""

    boards: list[AdminBoard]


class BoardCreate(BaseModel):
    boardId: Text = Field(max_length=40, examples=["winter-cup"])
    name: Text = Field(max_length=200, examples=["Winter cup"])
    window: WindowName
    actionTag: Text | None = Field(default=None, max_length=32)
    startsAt: datetime | None = Field(default=None, description="A tournament's start (UTC).")
    endsAt: datetime | None = Field(default=None, description="A tournament's end, exclusive.")
    reason: StrictStr | None = _REASON


class BoardEdit(BaseModel):
    """What may change: the name; a tournament's start while it has not started; its end
    while it has not finished (never into the past: what counted stays counted)."""

    name: Text | None = Field(default=None, max_length=200)
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    reason: StrictStr | None = _REASON


_BOARD_400 = (
    400,
    "`VALIDATION_ERROR`: a field the CLI would refuse too (`field` names it): a bad id, name, "
    "window, tag or range, an id in use, or a change the board no longer allows.",
)


@blueprint.get("/boards")
@tag(["admin"])
@security_scheme([{"bearer": []}])
@requires_admin
@validate_response(AdminBoards)
@errors(*ADMIN_ERRORS, 500)
async def list_boards(admin: Identity) -> AdminBoards:
    """Every board and tournament, ended ones included, with its state now."""
    now = datetime.now(UTC)
    boards = await db_catalog.list_boards(services().pool)
    return AdminBoards(boards=[AdminBoard.of(b, now) for b in boards])


@blueprint.post("/boards")
@tag(["admin"])
@security_scheme([{"bearer": []}])
@requires_admin
@validate_request(BoardCreate)
@validate_response(AdminBoard, 201)
@errors(_BOARD_400, *ADMIN_ERRORS, 413, 415, 500)
async def create_board(data: BoardCreate, admin: Identity) -> tuple[AdminBoard, int]:
    """Create a board or a tournament (as `leaderboard boards create`; audited)."""
    svc = services()
    board, audit_id = await db_catalog.create_board(
        svc.pool,
        admin,
        new_board(
            data.boardId,
            data.name,
            data.window,
            action_tag=data.actionTag,
            starts_at=data.startsAt,
            ends_at=data.endsAt,
        ),
        admin_catalog.optional_reason(data.reason),
    )
    await _refresh(svc)
    return AdminBoard.of(board, datetime.now(UTC), audit_id), 201


@blueprint.patch("/boards/<boardId>")
@tag(["admin"])
@security_scheme([{"bearer": []}])
@requires_admin
@validate_request(BoardEdit)
@validate_response(AdminBoard)
@parameter(*_BOARD_ID)
@errors(_BOARD_400, *ADMIN_ERRORS, _NO_BOARD, 413, 415, 500)
async def edit_board(boardId: str, data: BoardEdit, admin: Identity) -> AdminBoard:
    """Rename a board; move a tournament's start (not yet started) or end (not yet over)."""
    svc = services()
    edit = admin_catalog.BoardChange(name=data.name, starts_at=data.startsAt, ends_at=data.endsAt)
    board, audit_id = await db_catalog.edit_board(
        svc.pool, admin, boardId[:40], edit, admin_catalog.optional_reason(data.reason)
    )
    await _refresh(svc)
    return AdminBoard.of(board, datetime.now(UTC), audit_id)


@blueprint.post("/boards/<boardId>/end")
@tag(["admin"])
@security_scheme([{"bearer": []}])
@requires_admin
@validate_response(AdminBoard)
@parameter(*_BOARD_ID)
@errors(
    (
        400,
        "`VALIDATION_ERROR`: a built-in board (it cannot end), a board already ended, or a "
        'body that is not `{"reason"?: string}`.',
    ),
    *ADMIN_ERRORS,
    _NO_BOARD,
    413,
    500,
)
async def end_board(boardId: str, admin: Identity) -> AdminBoard:
    """Stop a board counting now (as `leaderboard boards end`; its periods stay readable).
    The body is optional: `{"reason": "..."}`."""
    svc = services()
    reason = admin_catalog.optional_reason(await _optional_reason())
    board, audit_id = await db_catalog.end_board(svc.pool, admin, boardId[:40], reason)
    await _refresh(svc)
    return AdminBoard.of(board, datetime.now(UTC), audit_id)


async def _optional_reason() -> str | None:
    """``reason`` of an optional JSON body (none, empty, or ``{"reason": ...}``)."""
    body = await request.get_data()
    if not body.strip():
        return None
    value: Any = await request.get_json(force=True)
    if not isinstance(value, dict) or set(value) - {"reason"}:
        raise validation_error('The body is optional; when given it is {"reason": "..."}.')
    reason = value.get("reason")
    if reason is not None and (not isinstance(reason, str) or "\x00" in reason):
        raise InvalidInput("`reason` is a string without NUL characters.", field="reason")
    return reason


# -- actions --------------------------------------------------------------------------------------


class AdminAction(BaseModel):
    """An action as an operator sees it. A quiz's answer key is never returned: only how
    many answers it holds (edit it by sending `answers`)."""

    actionId: str
    name: str
    description: str
    points: int
    repeat: Literal["once", "daily"]
    active: bool
    tags: list[str]
    verification: Verification
    questions: list[str]
    answerCount: int
    auditId: int | None = Field(default=None, description="The audit entry of this change.")

    @classmethod
    def of(cls, action: Action, audit_id: int | None = None) -> AdminAction:
        return cls(
            actionId=action.id,
            name=action.name,
            description=action.description,
            points=action.points,
            repeat=action.repeat,  # type: ignore[arg-type]  # checked by parse_action
            active=action.active,
            tags=list(action.tags),
            verification=action.verification,  # type: ignore[arg-type]
            questions=list(action.questions),
            answerCount=len(action.answers),
            auditId=audit_id,
        )


class AdminActions(BaseModel):
    """Every action, inactive ones included, by id."""

    actions: list[AdminAction]


_TEXTS = Field(default=None, max_length=admin_catalog.MAX_LIST_ITEMS)


class ActionFields(BaseModel):
    # Sizes here only bound the input; parse_action (the CLI's rules) decides what is valid.
    name: Text | None = Field(default=None, max_length=200)
    description: Text | None = Field(default=None, max_length=2000)
    points: StrictInt | None = Field(default=None, description="1..100.")
    repeat: Literal["once", "daily"] | None = None
    active: StrictBool | None = Field(default=None, description="`false` deactivates it.")
    tags: list[Text] | None = _TEXTS
    verification: Verification | None = None
    questions: list[Text] | None = _TEXTS
    answers: list[Text] | None = Field(
        default=None,
        max_length=admin_catalog.MAX_LIST_ITEMS,
        description="A quiz's answer key, one per question (never returned).",
    )
    reason: StrictStr | None = _REASON

    def given(self) -> dict[str, Any]:
        """The catalog fields the request set (not ``reason``)."""
        return {k: getattr(self, k) for k in self.model_fields_set if k != "reason"}


class ActionCreate(ActionFields):
    actionId: Text = Field(max_length=64, examples=["quiz_042"])
    name: Text = Field(max_length=200)
    points: StrictInt = Field(description="1..100.")


class ActionEdit(ActionFields):
    """Any of the fields; those absent keep their value. Changing `verification` away from
    `quiz` drops the questions and answers unless they are sent too."""


_ACTION_400 = (
    400,
    "`VALIDATION_ERROR`: a field `leaderboard actions load` would refuse too (`field` names "
    "it), or an id in use.",
)


@blueprint.get("/actions")
@tag(["admin"])
@security_scheme([{"bearer": []}])
@requires_admin
@validate_response(AdminActions)
@errors(*ADMIN_ERRORS, 500)
async def list_actions(admin: Identity) -> AdminActions:
    """The whole catalog, inactive actions included (answer keys left out)."""
    actions = await db_catalog.list_actions(services().pool)
    return AdminActions(actions=[AdminAction.of(a) for a in actions])


@blueprint.post("/actions")
@tag(["admin"])
@security_scheme([{"bearer": []}])
@requires_admin
@validate_request(ActionCreate)
@validate_response(AdminAction, 201)
@errors(_ACTION_400, *ADMIN_ERRORS, 413, 415, 500)
async def create_action(data: ActionCreate, admin: Identity) -> tuple[AdminAction, int]:
    """Add an action to the catalog (the rules of `leaderboard actions load`; audited)."""
    svc = services()
    action = admin_catalog.checked_action({"id": data.actionId, **data.given()})
    audit_id = await db_catalog.create_action(
        svc.pool, admin, action, admin_catalog.optional_reason(data.reason)
    )
    await _refresh(svc)
    return AdminAction.of(action, audit_id), 201


@blueprint.patch("/actions/<actionId>")
@tag(["admin"])
@security_scheme([{"bearer": []}])
@requires_admin
@validate_request(ActionEdit)
@validate_response(AdminAction)
@parameter(*_ACTION_ID)
@errors(_ACTION_400, *ADMIN_ERRORS, _NO_ACTION, 413, 415, 500)
async def edit_action(actionId: str, data: ActionEdit, admin: Identity) -> AdminAction:
    """Change an action's points, name, description, verification, quiz, tags, or deactivate
    it (`"active": false`). Points apply to completions from now on."""
    svc = services()
    action, audit_id = await db_catalog.edit_action(
        svc.pool, admin, actionId[:64], data.given(), admin_catalog.optional_reason(data.reason)
    )
    await _refresh(svc)
    return AdminAction.of(action, audit_id)


async def _refresh(svc: Services) -> None:
    """Re-read this node's boards and catalog now: the change counts here at once (other
    nodes re-read them every ``CATALOG_REFRESH_SECONDS``)."""
    await refresh_catalog(svc.catalog, svc.pool)
    await refresh_boards(svc.board_catalog, svc.pool)
