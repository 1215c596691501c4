"""Boards: many rankings under one rule (DESIGN §Boards).

A board has an id (a slug), a name, a window and an optional action tag. The window decides
which period a completion counts in: ``all`` (one period, ``all``), ``day`` (``2026-11-29``),
``week`` (ISO, Monday 00:00 UTC: ``2026-W48``), ``month`` (``2026-11``) or ``tournament``
(a fixed ``[startsAt, endsAt)`` range whose one period is the board's own id).

Everything here is a pure function of a UTC instant, so boundaries are tested with explicit
instants, never by waiting. The database computes the same periods at commit
(``board_period`` in sql/002_boards.sql); tests check the two agree.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from app.core.errors import InvalidInput
from app.core.ranking import is_member_time, iso, member_of, micros

BOARD_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
ACTION_TAG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
ALL_TIME = "all-time"
ALL_PERIOD = "all"
MAX_TAGS = 16

PAGE_DEFAULT, PAGE_MAX = 10, 100
RADIUS_DEFAULT, RADIUS_MAX = 5, 25
# A cursor names a board, a period and one row: anything longer is not one of ours.
MAX_CURSOR_CHARS = 200

_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Window(StrEnum):
    ALL = "all"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    TOURNAMENT = "tournament"


@dataclass(frozen=True)
class Period:
    """One period of a board: its id and its ``[starts_at, ends_at)`` (None: unbounded)."""

    id: str
    starts_at: datetime | None
    ends_at: datetime | None

    def contains(self, instant: datetime) -> bool:
        return (self.starts_at is None or self.starts_at <= instant) and (
            self.ends_at is None or instant < self.ends_at
        )


@dataclass(frozen=True)
class Board:
    """A board's definition (the ``boards`` table)."""

    id: str
    name: str
    window: Window
    action_tag: str | None = None
    starts_at: datetime | None = None  # a tournament's range
    ends_at: datetime | None = None
    ended_at: datetime | None = None  # ended by an operator: counts nothing from then on

    @property
    def is_all_time(self) -> bool:
        """The board of every action over all time: its scores are ``users.score``."""
        return self.window is Window.ALL and self.action_tag is None

    def counts(self, tags: tuple[str, ...] | list[str]) -> bool:
        """Whether a completion of an action with ``tags`` counts on this board."""
        return self.action_tag is None or self.action_tag in tags

    def is_open(self, instant: datetime) -> bool:
        """Whether a completion at ``instant`` counts on this board at all."""
        if self.ended_at is not None and instant >= self.ended_at:
            return False
        return self.period_at(instant) is not None

    def period_at(self, instant: datetime) -> Period | None:
        """The period a completion at ``instant`` counts in (None: outside a tournament)."""
        moment = instant.astimezone(UTC)
        if self.window is Window.ALL:
            return Period(ALL_PERIOD, None, None)
        if self.window is Window.DAY:
            start = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
            return Period(start.strftime("%Y-%m-%d"), start, start + timedelta(days=1))
        if self.window is Window.WEEK:
            monday = moment.date() - timedelta(days=moment.weekday())
            start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
            year, week, _ = monday.isocalendar()
            return Period(f"{year:04d}-W{week:02d}", start, start + timedelta(days=7))
        if self.window is Window.MONTH:
            start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
            return Period(start.strftime("%Y-%m"), start, _next_month(start))
        assert self.starts_at is not None and self.ends_at is not None
        if self.starts_at <= moment < self.ends_at:
            return Period(self.id, self.starts_at, self.ends_at)
        return None

    def current_period(self, now: datetime) -> Period | None:
        """The period open at ``now``, or None when the board counts nothing now."""
        return self.period_at(now) if self.is_open(now) else None

    def parse_period(self, text: str) -> Period:
        """The period named ``text`` on this board; InvalidInput when it names none."""
        period = self._parse_period(text)
        if period is None:
            raise InvalidInput(
                f"{text[:40]!r} is not a period of board {self.id!r} "
                f"(expected {_PERIOD_EXAMPLES[self.window].format(id=self.id)}).",
                field="period",
            )
        return period

    def _parse_period(self, text: str) -> Period | None:
        try:
            if self.window is Window.ALL:
                start = None if text != ALL_PERIOD else _EPOCH
            elif self.window is Window.DAY and (m := _DAY.match(text)):
                start = datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=UTC)
            elif self.window is Window.WEEK and (m := _WEEK.match(text)):
                monday = date.fromisocalendar(int(m[1]), int(m[2]), 1)
                start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
            elif self.window is Window.MONTH and (m := _MONTH.match(text)):
                start = datetime(int(m[1]), int(m[2]), 1, tzinfo=UTC)
            elif self.window is Window.TOURNAMENT and text == self.id:
                start = self.starts_at
            else:
                start = None
        except ValueError:  # 2026-02-30, 2026-W54, month 13 ...
            return None
        if start is None:
            return None
        period = self.period_at(start)
        return period if period is not None and period.id == text else None

    def as_json(self, now: datetime) -> dict[str, Any]:
        """The board as ``GET /api/boards`` lists it, with its period open at ``now``."""
        period = self.current_period(now)
        return {
            "boardId": self.id,
            "name": self.name,
            "window": self.window.value,
            "period": period.id if period else None,
            "startsAt": iso(period.starts_at) if period and period.starts_at else None,
            "endsAt": iso(period.ends_at) if period and period.ends_at else None,
            "actionTag": self.action_tag,
        }


_PERIOD_EXAMPLES = {
    Window.ALL: "'all'",
    Window.DAY: "a UTC date like '2026-11-29'",
    Window.WEEK: "an ISO week like '2026-W48'",
    Window.MONTH: "a month like '2026-11'",
    Window.TOURNAMENT: "the tournament's id '{id}'",
}


def _next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


BUILT_IN_BOARDS = (
    Board(ALL_TIME, "All time", Window.ALL),
    Board("daily", "Today", Window.DAY),
    Board("weekly", "This week", Window.WEEK),
    Board("monthly", "This month", Window.MONTH),
)
BUILT_IN_IDS = frozenset(b.id for b in BUILT_IN_BOARDS)


def new_board(
    board_id: str,
    name: str,
    window: str,
    *,
    action_tag: str | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> Board:
    """A board checked for the rules the ``boards`` table also enforces; InvalidInput if not."""
    if not BOARD_ID.match(board_id):
        raise InvalidInput(f"A board id must match {BOARD_ID.pattern}.", field="boardId")
    if not 1 <= len(name.strip()) <= 100:
        raise InvalidInput("A board name is 1-100 characters.", field="name")
    try:
        kind = Window(window)
    except ValueError:
        choices = ", ".join(w.value for w in Window)
        raise InvalidInput(f"The window must be one of {choices}.", field="window") from None
    if action_tag is not None and not ACTION_TAG.match(action_tag):
        raise InvalidInput(f"An action tag must match {ACTION_TAG.pattern}.", field="actionTag")
    if kind is Window.TOURNAMENT:
        if starts_at is None or ends_at is None:
            raise InvalidInput("A tournament needs a start and an end.", field="startsAt")
        if starts_at.tzinfo is None or ends_at.tzinfo is None:
            raise InvalidInput("Give the start and end with a time zone (UTC).", field="startsAt")
        if ends_at <= starts_at:
            raise InvalidInput("A tournament ends after it starts.", field="endsAt")
        starts_at, ends_at = starts_at.astimezone(UTC), ends_at.astimezone(UTC)
    elif starts_at is not None or ends_at is not None:
        raise InvalidInput("Only a tournament has a start and an end.", field="startsAt")
    board = Board(board_id, name.strip(), kind, action_tag, starts_at, ends_at)
    if board.is_all_time and board_id != ALL_TIME:
        raise InvalidInput(
            f"Every action over all time is the board {ALL_TIME!r} already; give a tag.",
            field="actionTag",
        )
    return board


def check_tags(tags: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """An action's tags, checked and de-duplicated in order; InvalidInput when one is bad."""
    found: list[str] = []
    for tag in tags:
        if not ACTION_TAG.match(tag):
            raise InvalidInput(f"A tag must match {ACTION_TAG.pattern}: {tag[:40]!r}.")
        if tag not in found:
            found.append(tag)
    if len(found) > MAX_TAGS:
        raise InvalidInput(f"An action has at most {MAX_TAGS} tags.")
    return tuple(found)


# -- keyset cursors ------------------------------------------------------------------------------


class RowKey(NamedTuple):
    """A row's place in the ranking order: ``score DESC, reached_at ASC, user id DESC``.
    (A tuple, not a dataclass: a page builds one per row, at 1,000 pages a second.)"""

    score: int
    reached_us: int  # reached_at in microseconds since the Unix epoch
    user_id: str

    @classmethod
    def of(cls, score: int, reached_at: datetime, user_id: str) -> RowKey:
        return cls(score, micros(reached_at), user_id)

    @property
    def reached_at(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self.reached_us)

    @property
    def member(self) -> str:
        """The row's member in a Redis ranking (app/core/ranking.py)."""
        return member_of(self.user_id, self.reached_us)


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after ``after`` on ``board`` in ``period``."""

    board: str
    period: str
    after: RowKey

    def encode(self) -> str:
        raw = "|".join(
            [
                "1",
                self.board,
                self.period,
                str(self.after.score),
                str(self.after.reached_us),
                self.after.user_id,
            ]
        )
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


_CURSOR_PART = re.compile(r"^[A-Za-z0-9_-]+$")


def decode_cursor(text: str, board: str, period: str) -> Cursor:
    """The cursor a previous page gave, for this board and period; InvalidInput otherwise."""
    bad = InvalidInput("The cursor is not valid for this board and period.", field="cursor")
    if not text or len(text) > MAX_CURSOR_CHARS or not _CURSOR_PART.match(text):
        raise bad
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad from None
    parts = raw.split("|")
    if len(parts) != 6 or parts[0] != "1" or parts[1] != board or parts[2] != period:
        raise bad
    score_text, reached_text, user_id = parts[3:]
    if not (score_text.isdigit() and reached_text.isdigit()) or len(score_text) > 18:
        raise bad
    if len(reached_text) > 17 or not is_member_time(int(reached_text)):
        raise bad
    try:
        canonical = str(uuid.UUID(user_id))
    except ValueError:
        raise bad from None
    if canonical != user_id:
        raise bad
    return Cursor(board, period, RowKey(int(score_text), int(reached_text), user_id))


def check_limit(value: str | None) -> int:
    return _bounded_int(value, "limit", PAGE_DEFAULT, 1, PAGE_MAX)


def check_radius(value: str | None) -> int:
    return _bounded_int(value, "radius", RADIUS_DEFAULT, 0, RADIUS_MAX)


def _bounded_int(value: str | None, field: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or len(value) > 4 or not low <= int(value) <= high:
        raise InvalidInput(f"`{field}` is a whole number from {low} to {high}.", field=field)
    return int(value)
