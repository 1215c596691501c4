"""The admin audit log: who did what to what, when and why. Append-only.

An entry is written in the same transaction as the change it describes (the database adapter
takes the transaction's connection), so the log never claims a change that did not happen
and never misses one that did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from app.core.errors import InvalidInput
from app.core.tokens import Identity

REASON_MAX = 500
# The actor of an entry written at the command line (`leaderboard admin grant`).
OPERATOR_NAME = "operator"


def check_reason(reason: str | None, *, required: bool = True) -> str | None:
    """A reason as stored: stripped, 1..500 characters (or None when not required)."""
    text = (reason or "").strip()
    if not text:
        if required:
            raise InvalidInput("Give a reason (1 to 500 characters).", field="reason")
        return None
    if len(text) > REASON_MAX:
        raise InvalidInput(f"The reason is longer than {REASON_MAX} characters.", field="reason")
    return text


@dataclass(frozen=True)
class AuditRecord:
    """What an admin action records. ``action`` is a dotted verb ('score.adjust',
    'board.create'); ``target`` names what it acted on ('user:<id>', 'board:<id>')."""

    admin: Identity | None  # None: an operator at the command line
    action: str
    target: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    admin_id: str | None
    admin_name: str
    action: str
    target: str | None
    details: dict[str, Any]
    reason: str | None


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: str | None  # None: no older entries


def encode_cursor(entry_id: int) -> str:
    return str(entry_id)


def decode_cursor(cursor: str | None) -> int | None:
    """The entry id a cursor continues below; InvalidInput for a cursor we did not issue."""
    if cursor is None or cursor == "":
        return None
    if not cursor.isdigit() or len(cursor) > 19:
        raise InvalidInput("The cursor is not one this API returned.", field="cursor")
    return int(cursor)


class AuditLog(Protocol):
    async def page(self, limit: int, before_id: int | None) -> AuditPage:
        """Up to ``limit`` entries older than ``before_id`` (None: the newest), newest first."""
        ...
