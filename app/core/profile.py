"""A user's own standing: score, rank and which actions they have completed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.errors import AccountGone
from app.core.ports import ProfileStore
from app.core.ranking import iso
from app.core.tokens import Identity


@dataclass(frozen=True)
class Profile:
    identity: Identity
    score: int
    rank: int | None
    completions: list[dict[str, Any]]


async def load_profile(store: ProfileStore, identity: Identity) -> Profile:
    score = await store.score_of(identity.user_id)
    if score is None:
        raise AccountGone()
    rank = await store.rank_of_score(score) if score > 0 else None
    completions = [
        {
            "actionId": c.action_id,
            "completedAt": iso(c.completed_at),
            "pointsEarned": c.points_earned,
        }
        for c in await store.current_completions(identity.user_id)
    ]
    return Profile(identity, score, rank, completions)
