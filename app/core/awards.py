"""Server-to-server awards: a game server, holding an API key, awards an action to a player.

The award takes the same commit and apply as a completion (app/core/scoring.py) and answers
with the same body. It skips the action's verification (a game server is the verifier), and
is idempotent per (API key, idempotency key): the first request inserts that pair in the same
transaction as the award it commits, so a concurrent repeat waits on the unique key until
that transaction ends and then answers with what the first stored (app/db/awards.py). The
same key with another request is refused, never silently answered with the first.

API keys are random (``lbk_`` + 32 random bytes), shown once, and kept only as a SHA-256
digest: they are high-entropy, so a fast hash is as good as a slow one and costs nothing per
request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from app.core.board_reads import UserNotFound, check_user_id
from app.core.errors import (
    AlreadyCompleted,
    DomainError,
    IdempotencyKeyReused,
    MissingScope,
    RateLimited,
    Unauthorized,
    UnknownAction,
)
from app.core.ports import (
    Committed,
    CompletionStore,
    RankingCache,
    RateGate,
    RateScope,
    retry_after_seconds,
)
from app.core.ranking import iso
from app.core.scoring import Completion, place_committed

log = logging.getLogger(__name__)

AWARD = "award"
SCOPES = frozenset({AWARD})
KEY_PREFIX = "lbk_"
MAX_KEY_CHARS = 100
# How long a repeat waits for the first request to store its answer (it commits first, then
# reads the rank); past this the repeat builds the answer itself from what was committed.
_SETTLE_WAIT_SECONDS, _SETTLE_POLL_SECONDS = 2.0, 0.02


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class AwardRequest:
    user_id: str
    action_id: str
    idempotency_key: str
    data: Any = None

    def digest(self) -> bytes:
        """What the idempotency key stands for: the whole request but the key itself."""
        canonical = json.dumps(
            {"userId": self.user_id, "actionId": self.action_id, "data": self.data},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode()).digest()


@dataclass(frozen=True)
class StoredAward:
    """An idempotency key already used: what it was for, and its answer once settled."""

    request_hash: bytes
    points: int | None
    new_score: int | None
    response: dict[str, Any] | None


@dataclass(frozen=True)
class Fresh:
    committed: Committed


@dataclass(frozen=True)
class Repeat:
    stored: StoredAward


class NotApplied:
    """The commit changed nothing (a repeat completion, a retired action); nothing stored."""


AwardOutcome = Fresh | Repeat | NotApplied


class ApiKeyStore(Protocol):
    async def find(self, digest: bytes) -> ApiKey | None:
        """The active (not revoked) key with this digest."""
        ...


class AwardStore(Protocol):
    async def award(self, api_key_id: str, request: AwardRequest, digest: bytes) -> AwardOutcome:
        """Record the idempotency key and commit the award in one transaction, or find the
        key already used (waiting for a concurrent first use to end). Raises UserNotFound,
        AccountBanned."""
        ...

    async def stored(self, api_key_id: str, idempotency_key: str) -> StoredAward | None: ...

    async def settle(
        self, api_key_id: str, idempotency_key: str, response: dict[str, Any]
    ) -> dict[str, Any]:
        """Store the answer unless one is stored already; the stored answer."""
        ...


def new_key_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def api_key_secret(authorization: str | None) -> str:
    """The key in an ``Authorization: ApiKey <key>`` header; Unauthorized otherwise."""
    scheme, _, secret = (authorization or "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "apikey" or not secret or len(secret) > MAX_KEY_CHARS:
        raise Unauthorized("Use the header `Authorization: ApiKey <key>` with a valid API key.")
    return secret


async def authenticate_key(keys: ApiKeyStore, authorization: str | None) -> ApiKey:
    """The active API key named by the header; Unauthorized for a missing, unknown or revoked
    one (the same answer for each: nothing tells which)."""
    found = await keys.find(key_digest(api_key_secret(authorization)))
    if found is None:
        raise Unauthorized("The API key is invalid or revoked.")
    return found


async def award_action(
    *,
    key: ApiKey,
    request: AwardRequest,
    awards: AwardStore,
    completions: CompletionStore,
    gate: RateGate,
    ranking: RankingCache,
    limit_per_minute: int,
) -> dict[str, Any]:
    """Award once per idempotency key; the completion's response body (the stored one for a
    repeat). Raises MissingScope, RateLimited, IdempotencyKeyReused and what a completion
    raises (UnknownAction, AlreadyCompleted), UserNotFound and AccountBanned."""
    if AWARD not in key.scopes:
        raise MissingScope(AWARD)
    verdict = await gate.hit(RateScope.API_KEY, key.id, limit_per_minute)
    if not verdict.allowed:
        raise RateLimited(retry_after_seconds(verdict))
    request = AwardRequest(
        check_user_id(request.user_id), request.action_id, request.idempotency_key, request.data
    )
    digest = request.digest()
    outcome = await awards.award(key.id, request, digest)
    if isinstance(outcome, Repeat):
        if not secrets.compare_digest(outcome.stored.request_hash, digest):
            raise IdempotencyKeyReused()
        return await _settled(key, request, outcome.stored, awards, completions)
    if isinstance(outcome, NotApplied):
        raise await _refusal(completions, request)
    completion = await place_committed(outcome.committed, completions, ranking)
    return await awards.settle(key.id, request.idempotency_key, response_body(completion))


def response_body(completion: Completion) -> dict[str, Any]:
    """The body of ``POST /api/action/complete`` (its keys in that order)."""
    return {
        "success": True,
        "pointsEarned": completion.points_earned,
        "newScore": completion.new_score,
        "rank": completion.rank,
        "previousRank": completion.previous_rank,
        "top10Changed": completion.top10_changed,
    }


async def _settled(
    key: ApiKey,
    request: AwardRequest,
    stored: StoredAward,
    awards: AwardStore,
    completions: CompletionStore,
) -> dict[str, Any]:
    """The answer the first request stored; waits for it while the first is still placing
    the award in the ranking, and builds it from the commit if the first never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _SETTLE_WAIT_SECONDS
    while stored.response is None and loop.time() < deadline:
        await asyncio.sleep(_SETTLE_POLL_SECONDS)
        stored = await awards.stored(key.id, request.idempotency_key) or stored
    if stored.response is not None:
        return stored.response
    points, score = stored.points or 0, stored.new_score or 0
    log.warning("an award's first request left no answer; building it from its commit")
    try:
        ranks = await completions.ranks(request.user_id, score, score - points)
        completion = Completion(points, score, ranks.rank, ranks.previous_rank, False)
    except Exception as error:
        log.warning("rank unknown for a repeated award: %r", error)
        completion = Completion(points, score, None, None, False)
    return await awards.settle(key.id, request.idempotency_key, response_body(completion))


async def _refusal(completions: CompletionStore, request: AwardRequest) -> DomainError:
    prior = await completions.prior(request.user_id, request.action_id)
    if prior is not None:
        error = AlreadyCompleted(request.action_id, iso(prior.completed_at), prior.points_earned)
        error.message = "The user has already completed this action."
        return error
    if not await completions.action_is_active(request.action_id):
        return UnknownAction(request.action_id)
    return UserNotFound(request.user_id)
