"""SQL of the write path: ``score_history`` and the score it adds to ``users``.

The commit is one statement: the history row and the score change happen together or not at
all, and the unique (user, action, period) key turns a duplicate into "nothing happened".
"""

from __future__ import annotations

import asyncpg

from app.core.errors import AccountGone
from app.core.ports import Committed, PriorCompletion, Ranks

COMMIT_SQL = """
WITH action AS (
    SELECT a.id, a.points, completion_period(a.repeat) AS period
      FROM actions a
     WHERE a.id = $2 AND a.active
), inserted AS (
    INSERT INTO score_history (user_id, action_id, period, score_change)
    SELECT $1, action.id, action.period, action.points FROM action
    ON CONFLICT (user_id, action_id, period) DO NOTHING
    RETURNING score_change
)
UPDATE users
   SET score = users.score + inserted.score_change,
       -- Strictly later than the user's previous change even if the clock steps back, so
       -- reached_at also orders this user's updates (the apply script relies on it).
       reached_at = GREATEST(clock_timestamp(), users.reached_at + interval '1 microsecond'),
       updated_at = clock_timestamp()
  FROM inserted
 WHERE users.id = $1
RETURNING users.username, users.score, users.reached_at, inserted.score_change AS points
"""

PRIOR_SQL = """
SELECT h.created_at, h.score_change
  FROM score_history h
  JOIN actions a ON a.id = h.action_id
 WHERE h.user_id = $1 AND h.action_id = $2 AND h.period = completion_period(a.repeat)
"""

RANKS_SQL = """
SELECT 1 + count(*) FILTER (WHERE score > $1) AS rank,
       1 + count(*) FILTER (WHERE score > $2 AND id <> $3) AS previous_rank
  FROM users
 WHERE score > $2
"""


async def commit_completion(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: str, action_id: str
) -> Committed | None:
    """Record the completion and add its points; None when nothing was applied."""
    try:
        row = await conn.fetchrow(COMMIT_SQL, user_id, action_id)
    except asyncpg.ForeignKeyViolationError:
        raise AccountGone() from None
    if row is None:
        return None
    return Committed(user_id, row["username"], row["score"], row["reached_at"], row["points"])


class PgCompletions:
    """The CompletionStore port on a PostgreSQL pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def commit(self, user_id: str, action_id: str) -> Committed | None:
        return await commit_completion(self._pool, user_id, action_id)

    async def prior(self, user_id: str, action_id: str) -> PriorCompletion | None:
        row = await self._pool.fetchrow(PRIOR_SQL, user_id, action_id)
        return None if row is None else PriorCompletion(row["created_at"], row["score_change"])

    async def action_is_active(self, action_id: str) -> bool:
        return bool(
            await self._pool.fetchval("SELECT active FROM actions WHERE id = $1", action_id)
        )

    async def ranks(self, user_id: str, score: int, previous_score: int) -> Ranks:
        row = await self._pool.fetchrow(RANKS_SQL, score, previous_score, user_id)
        return Ranks(row["rank"], row["previous_rank"] if previous_score > 0 else None)
