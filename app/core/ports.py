"""The ports: what the core needs from the outside world, as Protocols.

The adapters implement them (`app/db/` for PostgreSQL, `app/redis/` for Redis); tests can hand
the core in-memory twins instead. The dataclasses here are what crosses those boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from app.core.tokens import Identity

# -- rate limits -------------------------------------------------------------------------------


class RateScope(StrEnum):
    """What a rate limit counts; each scope has its own per-subject window."""

    SCORE_UPDATE = "score-update"  # subject: user id
    LOGIN_USER = "login-user"  # subject: the username tried
    LOGIN_CLIENT = "login-client"  # subject: the client address


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
class Committed:
    """A completion as PostgreSQL committed it: the user's new absolute score."""

    user_id: str
    username: str
    score: int
    reached_at: datetime
    points: int


@dataclass(frozen=True)
class PriorCompletion:
    completed_at: datetime
    points_earned: int


@dataclass(frozen=True)
class Ranks:
    rank: int
    previous_rank: int | None


class CompletionStore(Protocol):
    async def commit(self, user_id: str, action_id: str) -> Committed | None:
        """Record the completion and add its points in one commit; None when nothing was
        applied (a repeat, an inactive action). Raises AccountGone for a missing user."""
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
