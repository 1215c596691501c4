"""The one ranking rule, shared by PostgreSQL queries, the Redis encoding and the responses.

Higher score first; equal scores share a rank (1 + the number of strictly higher scores);
among equal scores whoever reached the score first is listed first; a remaining tie goes to
the larger user id. PostgreSQL: ``ORDER BY score DESC, reached_at ASC, id DESC``. Redis lists
``ZREVRANGE`` of members ``<16-digit (MAX - reached_at µs)>:<user id>`` in exactly that order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

TOP_N = 10
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Larger than any microsecond timestamp we will see (year 2255) and below 2**53, so the
# difference stays exact even where a client parses it as a double.
_MAX_MICROS = 9_000_000_000_000_000


@dataclass(frozen=True)
class BoardEntry:
    user_id: str
    username: str
    score: int
    rank: int

    def as_json(self) -> dict[str, object]:
        return {
            "userId": self.user_id,
            "username": self.username,
            "score": self.score,
            "rank": self.rank,
        }


def micros(moment: datetime) -> int:
    """Exact microseconds since the Unix epoch (no float rounding)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def ranking_member(user_id: str, reached_at: datetime) -> str:
    return member_of(user_id, micros(reached_at))


def member_of(user_id: str, reached_us: int) -> str:
    """The ranking member of a user who reached their score at ``reached_us`` (µs)."""
    return f"{_MAX_MICROS - reached_us:016d}:{user_id}"


def split_member(member: str) -> tuple[str, int]:
    """(user id, reached_at in µs) of a ranking member."""
    prefix, _, user_id = member.partition(":")
    return user_id, _MAX_MICROS - int(prefix)


def is_member_time(reached_us: int) -> bool:
    """Whether a time (µs) can be encoded in a member (a cursor must not name another)."""
    return 0 <= reached_us <= _MAX_MICROS


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def shared_ranks(rows: Sequence[tuple[str, str, int]]) -> list[BoardEntry]:
    """Rank rows already in ranking order: equal scores share the rank of the first of them."""
    entries: list[BoardEntry] = []
    rank = 0
    previous: int | None = None
    for position, (user_id, username, score) in enumerate(rows, start=1):
        if score != previous:
            rank, previous = position, score
        entries.append(BoardEntry(user_id, username, score, rank))
    return entries
