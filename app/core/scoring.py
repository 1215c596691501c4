"""Completing an action: the write path (DESIGN §Write path).

Gate, check the catalog, verify the proof the action asks for (app/core/verification.py),
commit to PostgreSQL, then apply to the ranking cache. The store and the cache
are ports (app/core/ports.py): PostgreSQL and Redis in production, in-memory twins in tests.

Once the commit has succeeded the answer is success, whatever fails afterwards: the award is
recorded, and saying otherwise would send the client into a retry that answers
ALREADY_COMPLETED. Only the rank can then be missing (``null``) when neither the cache nor the
database can give it in time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from app.core.catalog import Action, Catalog
from app.core.errors import AccountGone, AlreadyCompleted, DomainError, RateLimited, UnknownAction
from app.core.ports import (
    Committed,
    CompletionStore,
    IssuerDirectory,
    RankingCache,
    RateGate,
    RateScope,
    retry_after_seconds,
)
from app.core.ranking import iso
from app.core.tokens import Identity
from app.core.verification import receipt_reused, verification_changed, verify_completion

__all__ = ["Committed", "Completion", "complete_action"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Completion:
    points_earned: int
    new_score: int
    rank: int | None  # None: committed, but no rank could be read in time
    previous_rank: int | None
    top10_changed: bool


async def complete_action(
    *,
    identity: Identity,
    action_id: str,
    data: Any,
    store: CompletionStore,
    catalog: Catalog,
    gate: RateGate,
    ranking: RankingCache,
    issuers: IssuerDirectory,
    limit_per_minute: int,
) -> Completion:
    """Complete ``action_id`` for ``identity``. ``data`` is the request's raw ``data`` value
    (any JSON, already size-capped by the caller): the quiz answers or the game server's
    receipt, when the action's verification asks for them."""
    # First: a refused proof counts against the limit like any attempt (no free guessing).
    verdict = await gate.hit(RateScope.SCORE_UPDATE, identity.user_id, limit_per_minute)
    if not verdict.allowed:
        raise RateLimited(retry_after_seconds(verdict))
    action = catalog.get(action_id)
    if action is None:
        raise UnknownAction(action_id)
    proof = await verify_completion(action, identity, data, issuers)

    committed = await store.commit(
        identity.user_id, action_id, proof.receipt_jti, verified_as=action.verification
    )
    if committed is None:
        raise await _refusal(store, identity.user_id, action, proof.receipt_jti)
    return await _placed(committed, store, ranking)


async def _placed(
    committed: Committed, store: CompletionStore, ranking: RankingCache
) -> Completion:
    """Where the committed award puts the user. Never fails: the commit stands."""
    try:
        placed = await ranking.apply(committed)
    except Exception:
        # E.g. seeding a cold ranking from a database that just went away. The reconciler
        # repairs the cache later; the rank comes from the database meanwhile.
        log.warning("could not apply a committed score to the ranking", exc_info=True)
        placed = None
    if placed is not None:
        return Completion(
            committed.points,
            committed.score,
            placed.rank,
            placed.previous_rank,
            placed.top_changed,
        )
    # The cache is away: the commit stands (PostgreSQL is the source of truth); ranks come
    # from the database and the reconciler brings the cache back in line.
    try:
        ranks = await store.ranks(
            committed.user_id, committed.score, committed.score - committed.points
        )
    except Exception as error:
        log.warning("rank unknown after a committed award: %r", error)
        return Completion(committed.points, committed.score, None, None, False)
    return Completion(committed.points, committed.score, ranks.rank, ranks.previous_rank, False)


async def _refusal(
    store: CompletionStore, user_id: str, action: Action, receipt_jti: str | None
) -> DomainError:
    """Why a commit applied nothing: a receipt already spent (a replay that lost the race
    to the unique key, or a repeat with the same receipt), a repeat, an action gone from
    the catalog, an action whose verification changed since this node's copy, or no user."""
    action_id = action.id
    if receipt_jti is not None and await store.receipt_used(receipt_jti):
        return receipt_reused()
    prior = await store.prior(user_id, action_id)
    if prior is not None:
        return AlreadyCompleted(action_id, iso(prior.completed_at), prior.points_earned)
    kind = await store.verification_of(action_id)
    if kind is None:
        return UnknownAction(action_id)
    if kind != action.verification:
        return verification_changed(action_id, kind)
    return AccountGone()


# Public: server awards (app/core/awards.py) place a committed award exactly as a completion.
place_committed = _placed
