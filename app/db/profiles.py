"""SQL of a user's own standing: score, rank by score, and the completions that count now."""

from __future__ import annotations

import asyncpg

from app.core.ports import CompletionRecord

# Banned players are on no board, so they outrank no one.
RANK_SQL = "SELECT 1 + count(*) FROM users WHERE score > $1 AND banned_at IS NULL"

COMPLETIONS_SQL = """
SELECT h.action_id, h.created_at, h.score_change
  FROM score_history h
  JOIN actions a ON a.id = h.action_id
 WHERE h.user_id = $1
   AND h.period = completion_period(a.repeat)
 ORDER BY h.created_at
"""


class PgProfiles:
    """The ProfileStore port on a PostgreSQL pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def score_of(self, user_id: str) -> int | None:
        score: int | None = await self._pool.fetchval(
            "SELECT score FROM users WHERE id = $1", user_id
        )
        return score

    async def rank_of_score(self, score: int) -> int:
        return int(await self._pool.fetchval(RANK_SQL, score))

    async def current_completions(self, user_id: str) -> list[CompletionRecord]:
        rows = await self._pool.fetch(COMPLETIONS_SQL, user_id)
        return [CompletionRecord(r["action_id"], r["created_at"], r["score_change"]) for r in rows]
