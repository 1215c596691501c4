"""What an admin may change in boards and the action catalog, by the command line's rules.

A new board is checked by ``new_board`` and every action by ``parse_action``, exactly as
``leaderboard boards create`` and ``leaderboard actions load`` check theirs; this module adds
only what the command line has no verb for: editing a board, and merging an edit into an
action before it is checked again as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from app.core.audit import check_reason
from app.core.boards import Board, Window, new_board
from app.core.catalog import Action, CatalogError, parse_action
from app.core.errors import InvalidInput

# Input bounds of the lists an action request carries (parse_action allows 16 tags and 20
# questions; these only stop an oversized body before it is parsed).
MAX_LIST_ITEMS = 32

# The fields of an action, as a catalog file names them (parse_action reads these).
_ENTRY_FIELDS = (
    "name",
    "description",
    "points",
    "repeat",
    "active",
    "tags",
    "verification",
    "questions",
    "answers",
)


def optional_reason(text: str | None) -> str | None:
    return check_reason(text, required=False)


# -- boards ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardChange:
    """An edit of a board: None keeps the value."""

    name: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    @property
    def empty(self) -> bool:
        return self.name is None and self.starts_at is None and self.ends_at is None


def changed_board(board: Board, change: BoardChange, now: datetime) -> Board:
    """The board after ``change``; InvalidInput when the change is not allowed.

    A tournament's start may move only while it has not started, and its end only while it
    has not finished, never to before ``now``: completions already counted (or not) stay so,
    and every board score remains the sum of its window's history rows."""
    if change.empty:
        raise InvalidInput("Nothing to change: give a name, startsAt or endsAt.")
    if change.starts_at is not None or change.ends_at is not None:
        if board.window is not Window.TOURNAMENT:
            raise InvalidInput("Only a tournament has a start and an end.", field="startsAt")
        if board.ended_at is not None:
            raise InvalidInput("This tournament has ended; only its name can change.")
        assert board.starts_at is not None and board.ends_at is not None
        if change.starts_at is not None:
            _check_moves("startsAt", board.starts_at, change.starts_at, now, "started")
        if change.ends_at is not None:
            _check_moves("endsAt", board.ends_at, change.ends_at, now, "finished")
    checked = new_board(
        board.id,
        change.name if change.name is not None else board.name,
        board.window.value,
        action_tag=board.action_tag,
        starts_at=change.starts_at or board.starts_at,
        ends_at=change.ends_at or board.ends_at,
    )
    return replace(checked, ended_at=board.ended_at)


def _check_moves(field: str, current: datetime, wanted: datetime, now: datetime, past: str) -> None:
    if wanted.tzinfo is None:
        raise InvalidInput("Give the start and end with a time zone (UTC).", field=field)
    if current <= now:
        message = f"The tournament has {past}: its {field} can no longer move."
        raise InvalidInput(message, field=field)
    if wanted < now:
        raise InvalidInput(f"{field} cannot move into the past.", field=field)


def board_details(board: Board) -> dict[str, Any]:
    """A board as an audit entry records it."""
    return {
        "name": board.name,
        "window": board.window.value,
        "actionTag": board.action_tag,
        "startsAt": board.starts_at.astimezone(UTC).isoformat() if board.starts_at else None,
        "endsAt": board.ends_at.astimezone(UTC).isoformat() if board.ends_at else None,
    }


def board_changes(before: Board, after: Board) -> dict[str, Any]:
    """``{field: [before, after]}`` for each field that changed."""
    old, new = board_details(before), board_details(after)
    return {k: [old[k], new[k]] for k in old if old[k] != new[k]}


# -- actions --------------------------------------------------------------------------------------


def checked_action(entry: dict[str, Any]) -> Action:
    """An action from request fields, by the catalog file's rules; InvalidInput naming the
    field otherwise (the message never repeats an answer)."""
    try:
        return parse_action(entry)
    except CatalogError as error:
        field = "actionId" if error.field == "id" else error.field
        raise InvalidInput(str(error), field=field) from None


def as_entry(action: Action) -> dict[str, Any]:
    """An action as a catalog entry (what parse_action reads)."""
    return {
        "id": action.id,
        "name": action.name,
        "description": action.description,
        "points": action.points,
        "repeat": action.repeat,
        "active": action.active,
        "tags": list(action.tags),
        "verification": action.verification,
        "questions": list(action.questions),
        "answers": list(action.answers),
    }


def edited_action(action: Action, given: dict[str, Any]) -> Action:
    """``action`` with the fields ``given`` (absent ones kept), checked again as a whole.
    Leaving ``quiz`` drops the questions and answers unless new ones are given."""
    unknown = set(given) - set(_ENTRY_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}.")
    if not given:
        raise InvalidInput("Nothing to change: give at least one field.")
    entry = as_entry(action) | {k: v for k, v in given.items() if v is not None}
    if entry["verification"] != "quiz" and action.verification == "quiz":
        for key in ("questions", "answers"):
            if given.get(key) is None:
                entry[key] = []
    return checked_action(entry)


def action_details(action: Action) -> dict[str, Any]:
    """An action as an audit entry records it: the answer key only as a count."""
    entry = as_entry(action)
    entry["answers"] = len(action.answers)
    del entry["id"]
    return entry


def action_changes(before: Action, after: Action) -> dict[str, Any]:
    """``{field: [before, after]}`` for each field that changed (answers: ``"changed"``)."""
    old, new = as_entry(before), as_entry(after)
    changes: dict[str, Any] = {}
    for key in _ENTRY_FIELDS:
        if old[key] != new[key]:
            changes[key] = "changed" if key == "answers" else [old[key], new[key]]
    return changes
