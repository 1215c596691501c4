"""The ports: what the core needs from the outside world, as Protocols.

The adapters implement them (`app/db/` for PostgreSQL, `app/redis/` for Redis); tests can hand
the core in-memory twins instead. The dataclasses here are what crosses those boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple, Protocol

from app.core.boards import RowKey
from app.core.tokens import Identity

# -- rate limits -------------------------------------------------------------------------------


class RateScope(StrEnum):
    """What a rate limit counts; each scope has its own per-subject window."""

    SCORE_UPDATE = "score-update"  # subject: user id
    LOGIN_USER = "login-user"  # subject: the username tried
    LOGIN_CLIENT = "login-client"  # subject: the client address
    API_KEY = "api-key"  # subject: the API key's id (server awards)


class RateVerdict(Protocol):
    @property
    def allowed(self) -> bool: ...
    @property
    def retry_after_ms(self) -> int: ...


class RateGate(Protocol):
    async def hit(self, scope: RateScope, subject: str, limit: int) -> RateVerdict:
        """Count one request of ``subject`` in ``scope``; the verdict says whether it may go on."""
        ...


def retry_after_seconds(verdict: RateVerdict) -> int:
    return max(1, -(-verdict.retry_after_ms // 1000))


# -- scores ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardScore:
    """The user's new absolute score on one board in the period the completion counted in."""

    board_id: str
    period: str
    score: int
    ends_at: datetime | None  # when that period ends (None: never)


@dataclass(frozen=True)
class Committed:
    """A completion as PostgreSQL committed it: the user's new absolute score (all time, and
    on every other board it counted on; they share ``reached_at``)."""

    user_id: str
    username: str
    score: int
    reached_at: datetime
    points: int
    boards: tuple[BoardScore, ...] = ()


@dataclass(frozen=True)
class PriorCompletion:
    completed_at: datetime
    points_earned: int


@dataclass(frozen=True)
class Ranks:
    rank: int
    previous_rank: int | None


class CompletionStore(Protocol):
    async def commit(
        self,
        user_id: str,
        action_id: str,
        receipt_jti: str | None = None,
        verified_as: str | None = None,
    ) -> Committed | None:
        """Record the completion and add its points in one commit; None when nothing was
        applied (a repeat, an inactive action, an action whose verification is no longer
        ``verified_as``). Raises AccountGone for a missing user, and VerificationFailed
        ("receipt_reused") when ``receipt_jti`` was already spent."""
        ...

    async def receipt_used(self, receipt_jti: str) -> bool:
        """Whether a completion was already recorded with this receipt id."""
        ...

    async def verification_of(self, action_id: str) -> str | None:
        """The active action's verification kind as stored now (None: no such action)."""
        ...

    async def prior(self, user_id: str, action_id: str) -> PriorCompletion | None:
        """The completion that makes this one a repeat (in the action's current period)."""
        ...

    async def action_is_active(self, action_id: str) -> bool: ...

    async def ranks(self, user_id: str, score: int, previous_score: int) -> Ranks:
        """Ranks from the database (when the ranking cache is away)."""
        ...


class Placement(Protocol):
    """Where an applied score landed in the cached ranking."""

    @property
    def rank(self) -> int: ...
    @property
    def previous_rank(self) -> int | None: ...
    @property
    def top_changed(self) -> bool: ...


class RankingCache(Protocol):
    async def apply(self, committed: Committed) -> Placement | None:
        """Write a committed score into the ranking; None when the cache cannot answer."""
        ...


@dataclass(frozen=True)
class StandingRow:
    """A ranked user as PostgreSQL holds them."""

    user_id: str
    username: str
    score: int
    reached_at: datetime


class StandingsStore(Protocol):
    async def top(self, limit: int) -> list[StandingRow]:
        """The first ``limit`` ranked users, in ranking order (the read path's last resort)."""
        ...


# -- accounts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredLogin:
    identity: Identity
    password_hash: str | None
    banned: bool = False


class AccountStore(Protocol):
    async def create(self, username: str, password_hash: str) -> Identity:
        """Raises UsernameTaken when the name (case-insensitively) exists."""
        ...

    async def find_login(self, username: str) -> StoredLogin | None: ...

    async def add_refresh_token(
        self, digest: bytes, user_id: str, family: str, ttl_seconds: int
    ) -> None: ...

    async def use_refresh_token(self, digest: bytes) -> tuple[Identity, str] | None:
        """Mark an unused, unexpired token used and return its user and family. A token that
        was already used ends its whole family (a copy is in other hands) and gives None."""
        ...


# -- profiles ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompletionRecord:
    action_id: str
    completed_at: datetime
    points_earned: int


class ProfileStore(Protocol):
    async def score_of(self, user_id: str) -> int | None: ...

    async def rank_of_score(self, score: int) -> int: ...

    async def current_completions(self, user_id: str) -> list[CompletionRecord]:
        """Completions that count now (a daily action: today's), oldest first."""
        ...


# -- boards ------------------------------------------------------------------------------------


class RankedRow(NamedTuple):
    """One row of a board with its shared rank, and its place in the ranking order. (A
    tuple, not a dataclass: a page builds one per row, at 1,000 pages a second.)"""

    user_id: str
    username: str
    score: int
    rank: int
    key: RowKey

    def as_json(self) -> dict[str, object]:
        return {
            "userId": self.user_id,
            "username": self.username,
            "score": self.score,
            "rank": self.rank,
        }


@dataclass(frozen=True)
class RankedRun:
    """Consecutive rows of one (board, period) in ranking order, and how many are ranked."""

    rows: list[RankedRow]
    total: int


class BoardRankings(Protocol):
    """Reads of one (board, period): pages by keyset, and the rows around a user."""

    async def page(
        self, board_id: str, period: str, limit: int, after: RowKey | None
    ) -> RankedRun | None:
        """Up to ``limit`` rows right after ``after`` (from the top when None); None when
        this source cannot answer (a cache that is away or cold)."""
        ...

    async def around(
        self, board_id: str, period: str, user_id: str, radius: int
    ) -> RankedRun | None:
        """The user's row and up to ``radius`` rows on each side (no rows: unranked)."""
        ...


@dataclass(frozen=True)
class UserStanding:
    board_id: str
    period: str
    score: int
    rank: int


@dataclass(frozen=True)
class RecentCompletion:
    action_id: str
    name: str
    points_earned: int
    completed_at: datetime


@dataclass(frozen=True)
class PublicUser:
    user_id: str
    username: str
    created_at: datetime


class BoardStore(BoardRankings, Protocol):
    """The database's boards: every period (the truth), and what profiles show. It always
    answers (or raises): there is nothing behind it to fall back on."""

    async def page(
        self, board_id: str, period: str, limit: int, after: RowKey | None
    ) -> RankedRun: ...

    async def around(self, board_id: str, period: str, user_id: str, radius: int) -> RankedRun: ...

    async def standings(self, user_id: str, wanted: list[tuple[str, str]]) -> list[UserStanding]:
        """The user's score and rank on each wanted (board, period) where they have points."""
        ...

    async def recent(self, user_id: str, limit: int) -> list[RecentCompletion]: ...

    async def public_user(self, user_id: str) -> PublicUser | None: ...

    async def periods(self, board_id: str, limit: int) -> list[str]:
        """The board's periods that have scores, newest first."""
        ...


# -- verification ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issuer:
    """A game server that signs receipts (HS256 with ``secret``)."""

    name: str
    secret: str = field(repr=False)  # never in a repr, so never in a log line
    revoked: bool = False


class IssuerDirectory(Protocol):
    async def find(self, name: str) -> Issuer | None:
        """The issuer of that name, revoked ones included (None: no such issuer)."""
        ...
