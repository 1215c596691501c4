"""A user's own standing: score, rank and which actions they have completed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from app.core.ranking import iso, rank_of_score
from app.core.tokens import Identity
from app.http.errors import unauthorized

COMPLETIONS_SQL = """
SELECT h.action_id, h.created_at, h.score_change
  FROM score_history h
  JOIN actions a ON a.id = h.action_id
 WHERE h.user_id = $1
   AND h.period = completion_period(a.repeat)
 ORDER BY h.created_at
"""


@dataclass(frozen=True)
class Profile:
    identity: Identity
    score: int
    rank: int | None
    completions: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            "userId": self.identity.user_id,
            "username": self.identity.username,
            "score": self.score,
            "rank": self.rank,
            "completions": self.completions,
        }


async def load_profile(pool: asyncpg.Pool, identity: Identity) -> Profile:
    score = await pool.fetchval("SELECT score FROM users WHERE id = $1", identity.user_id)
    if score is None:
        raise unauthorized("This account no longer exists.")
    rank = await rank_of_score(pool, score) if score > 0 else None
    rows = await pool.fetch(COMPLETIONS_SQL, identity.user_id)
    completions = [
        {
            "actionId": r["action_id"],
            "completedAt": iso(r["created_at"]),
            "pointsEarned": r["score_change"],
        }
        for r in rows
    ]
    return Profile(identity, score, rank, completions)
