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
# Blank characters a reason may not consist of only: the same explicit set in the strip below
# and in REASON_PATTERN (the API schema), so every regex engine agrees on what is blank.
_BLANKS = "\t\n\x0b\x0c\r \x85\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
_BLANKS += "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_BLANK_CLASS = r"\t\n\x0b\x0c\r \x85\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# At least one character that is not blank, and no NUL (PostgreSQL text cannot hold one).
REASON_PATTERN = rf"^[^\x00]*[^\x00{_BLANK_CLASS}][^\x00]*$"
# The actor of an entry written at the command line (`leaderboard admin grant`).
OPERATOR_NAME = "operator"


def check_reason(reason: str | None, *, required: bool = True) -> str | None:
    """A reason as stored: stripped, 1..500 characters (or None when not required)."""
    if reason is not None and "\x00" in reason:
        raise InvalidInput("The reason may not contain a NUL character.", field="reason")
    text = (reason or "").strip(_BLANKS)
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
    if cursor is None:
        return None
    # Digits only (isdigit() also takes other scripts' digits) and within a bigint.
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18:
        raise InvalidInput("The cursor is not one this API returned.", field="cursor")
    return int(cursor)


class AuditLog(Protocol):
    async def page(self, limit: int, before_id: int | None) -> AuditPage:
        """Up to ``limit`` entries older than ``before_id`` (None: the newest), newest first."""
        ...
