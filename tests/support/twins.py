"""In-memory twins of the core's ports (app/core/ports.py), for millisecond unit tests.

Each keeps the contract the real adapter keeps, in the simplest way: the completion store
applies a completion at most once per (user, action), the ranking follows the one ranking rule,
the rate gate is the same sliding window. The real adapters are proven against real servers by
the integration tests; these let the core's decisions be tested without them.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from app.core.errors import AccountGone, UsernameTaken
from app.core.ports import (
    Committed,
    CompletionRecord,
    Issuer,
    PriorCompletion,
    Ranks,
    RateScope,
    RateVerdict,
    StoredLogin,
)
from app.core.tokens import Identity
from app.core.verification import receipt_reused
from app.redis.rate_gate import LocalSlidingWindow

_START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class _User:
    identity: Identity
    password_hash: str | None = None
    score: int = 0
    reached_at: datetime = _START


@dataclass
class MemoryDatabase:
    """Users, actions and history: what the stores below share (one "database")."""

    users: dict[str, _User] = field(default_factory=dict)
    active_actions: dict[str, int] = field(default_factory=dict)  # id -> points
    history: dict[tuple[str, str], CompletionRecord] = field(default_factory=dict)
    receipt_jtis: set[str] = field(default_factory=set)  # receipts spent (unique, like the index)
    action_kinds: dict[str, str] = field(default_factory=dict)  # id -> verification (default claim)
    _clock: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add_user(self, username: str) -> Identity:
        identity = Identity(str(uuid.uuid4()), username)
        self.users[identity.user_id] = _User(identity)
        return identity

    def tick(self) -> datetime:
        return _START + timedelta(microseconds=next(self._clock))


class MemoryCompletions:
    """The CompletionStore port."""

    def __init__(self, db: MemoryDatabase) -> None:
        self.db = db

    async def commit(
        self,
        user_id: str,
        action_id: str,
        receipt_jti: str | None = None,
        verified_as: str | None = None,
    ) -> Committed | None:
        points = self.db.active_actions.get(action_id)
        if points is None or (user_id, action_id) in self.db.history:
            return None
        if verified_as is not None and verified_as != await self.verification_of(action_id):
            return None
        user = self.db.users.get(user_id)
        if user is None:
            raise AccountGone()
        if receipt_jti is not None:
            if receipt_jti in self.db.receipt_jtis:
                raise receipt_reused()  # the unique index's answer
            self.db.receipt_jtis.add(receipt_jti)
        now = self.db.tick()
        self.db.history[(user_id, action_id)] = CompletionRecord(action_id, now, points)
        user.score += points
        user.reached_at = now
        return Committed(user_id, user.identity.username, user.score, now, points)

    async def prior(self, user_id: str, action_id: str) -> PriorCompletion | None:
        record = self.db.history.get((user_id, action_id))
        return (
            None if record is None else PriorCompletion(record.completed_at, record.points_earned)
        )

    async def verification_of(self, action_id: str) -> str | None:
        if action_id not in self.db.active_actions:
            return None
        return self.db.action_kinds.get(action_id, "claim")

    async def receipt_used(self, receipt_jti: str) -> bool:
        return receipt_jti in self.db.receipt_jtis

    async def action_is_active(self, action_id: str) -> bool:
        return action_id in self.db.active_actions

    async def ranks(self, user_id: str, score: int, previous_score: int) -> Ranks:
        scores = [u.score for u in self.db.users.values()]
        previous = [u.score for u in self.db.users.values() if u.identity.user_id != user_id]
        return Ranks(
            1 + sum(s > score for s in scores),
            1 + sum(s > previous_score for s in previous) if previous_score > 0 else None,
        )


@dataclass(frozen=True)
class Placed:
    rank: int
    previous_rank: int | None
    top_changed: bool


class MemoryRanking:
    """The RankingCache port: absolute scores, newest wins, ranks by the one rule.
    ``available = False`` makes it answer as a cache that cannot be reached."""

    def __init__(self) -> None:
        self.available = True
        self.standings: dict[str, tuple[int, datetime]] = {}

    def _rank(self, score: int, excluding: str | None = None) -> int:
        return 1 + sum(s > score for uid, (s, _) in self.standings.items() if uid != excluding)

    def top(self, n: int = 10) -> list[str]:
        order = sorted(self.standings.items(), key=lambda kv: (-kv[1][0], kv[1][1], kv[0]))
        return [user_id for user_id, _ in order[:n]]

    async def apply(self, committed: Committed) -> Placed | None:
        if not self.available:
            return None
        old = self.standings.get(committed.user_id)
        if old is not None and old[1] >= committed.reached_at:
            return Placed(self._rank(old[0]), self._rank(old[0]), False)  # a late apply
        before = self.top()
        previous = self._rank(old[0], committed.user_id) if old else None
        self.standings[committed.user_id] = (committed.score, committed.reached_at)
        return Placed(self._rank(committed.score), previous, self.top() != before)


class MemoryRateGate:
    """The RateGate port: the same sliding window as the Redis script, per scope."""

    def __init__(self, window_ms: int = 60_000) -> None:
        self.window = LocalSlidingWindow()
        self.window_ms = window_ms

    async def hit(self, scope: RateScope, subject: str, limit: int) -> RateVerdict:
        return self.window.hit(f"{scope}:{subject}", limit, self.window_ms)


class MemoryAccounts:
    """The AccountStore port, with refresh-token rotation and family revocation."""

    def __init__(self, db: MemoryDatabase) -> None:
        self.db = db
        self.tokens: dict[bytes, dict[str, object]] = {}

    async def create(self, username: str, password_hash: str) -> Identity:
        if any(u.identity.username.lower() == username.lower() for u in self.db.users.values()):
            raise UsernameTaken(username)
        identity = self.db.add_user(username)
        self.db.users[identity.user_id].password_hash = password_hash
        return identity

    async def find_login(self, username: str) -> StoredLogin | None:
        for user in self.db.users.values():
            if user.identity.username.lower() == username.lower():
                return StoredLogin(user.identity, user.password_hash)
        return None

    async def add_refresh_token(
        self, digest: bytes, user_id: str, family: str, ttl_seconds: int
    ) -> None:
        self.tokens[digest] = {"user": user_id, "family": family, "used": False, "revoked": False}

    async def use_refresh_token(self, digest: bytes) -> tuple[Identity, str] | None:
        token = self.tokens.get(digest)
        if token is None:
            return None
        if token["used"] or token["revoked"]:
            for other in self.tokens.values():
                if other["family"] == token["family"]:
                    other["revoked"] = True
            return None
        token["used"] = True
        return self.db.users[str(token["user"])].identity, str(token["family"])


class MemoryIssuers:
    """The IssuerDirectory port: issuers by name, revoked ones kept."""

    def __init__(self) -> None:
        self.issuers: dict[str, Issuer] = {}
        self.lookups = 0

    def add(self, name: str, secret: str) -> Issuer:
        self.issuers[name] = Issuer(name, secret)
        return self.issuers[name]

    def revoke(self, name: str) -> None:
        self.issuers[name] = Issuer(name, self.issuers[name].secret, revoked=True)

    async def find(self, name: str) -> Issuer | None:
        self.lookups += 1
        return self.issuers.get(name)
