"""Completing an action: the write path (DESIGN §Write path).

Gate, validate, commit to PostgreSQL, then apply to the Redis ranking. The commit is one SQL
statement: the history row and the score change happen together or not at all, and the
unique (user, action, period) key turns a duplicate into "nothing happened".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from app.core.catalog import Catalog
from app.core.ranking import iso
from app.core.tokens import Identity
from app.http.errors import ApiError, rate_limited, unauthorized
from app.redis.keys import Keys
from app.redis.ranking_cache import LeaderboardCache
from app.redis.rate_gate import RateLimiter, retry_after_seconds

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


@dataclass(frozen=True)
class Committed:
    user_id: str
    username: str
    score: int
    reached_at: datetime
    points: int


@dataclass(frozen=True)
class Completion:
    points_earned: int
    new_score: int
    rank: int
    previous_rank: int | None
    top10_changed: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "success": True,
            "pointsEarned": self.points_earned,
            "newScore": self.new_score,
            "rank": self.rank,
            "previousRank": self.previous_rank,
            "top10Changed": self.top10_changed,
        }


async def commit_completion(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: str, action_id: str
) -> Committed | None:
    """Record the completion and add its points; None when nothing was applied."""
    try:
        row = await conn.fetchrow(COMMIT_SQL, user_id, action_id)
    except asyncpg.ForeignKeyViolationError:
        raise unauthorized("This account no longer exists.") from None
    if row is None:
        return None
    return Committed(user_id, row["username"], row["score"], row["reached_at"], row["points"])


async def explain_refusal(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: str, action_id: str
) -> ApiError:
    """Why a commit applied nothing: a repeat, an action gone from the catalog, or no user."""
    prior = await conn.fetchrow(PRIOR_SQL, user_id, action_id)
    if prior is not None:
        return ApiError(
            400,
            "ALREADY_COMPLETED",
            "You have already completed this action.",
            details={
                "actionId": action_id,
                "completedAt": iso(prior["created_at"]),
                "pointsEarned": prior["score_change"],
            },
        )
    active = await conn.fetchval("SELECT active FROM actions WHERE id = $1", action_id)
    if not active:
        return invalid_action(action_id)
    return unauthorized("This account no longer exists.")


def invalid_action(action_id: str) -> ApiError:
    return ApiError(
        400,
        "INVALID_ACTION",
        f"There is no action {action_id!r}.",
        details={"actionId": action_id},
    )


async def complete_action(
    *,
    identity: Identity,
    action_id: str,
    pool: asyncpg.Pool,
    catalog: Catalog,
    limiter: RateLimiter,
    leaderboard: LeaderboardCache,
    keys: Keys,
    limit_per_minute: int,
) -> Completion:
    decision = await limiter.hit(keys.rate_limit(identity.user_id), limit_per_minute)
    if not decision.allowed:
        raise rate_limited(retry_after_seconds(decision))
    if catalog.get(action_id) is None:
        raise invalid_action(action_id)

    committed = await commit_completion(pool, identity.user_id, action_id)
    if committed is None:
        raise await explain_refusal(pool, identity.user_id, action_id)

    applied = await leaderboard.apply(committed)
    if applied is not None:
        return Completion(
            committed.points,
            committed.score,
            applied.rank,
            applied.previous_rank,
            applied.top_changed,
        )
    # Redis is away: the commit stands (PostgreSQL is the source of truth); ranks come from
    # the database and the reconciler brings the cache back in line.
    previous_score = committed.score - committed.points
    row = await pool.fetchrow(RANKS_SQL, committed.score, previous_score, committed.user_id)
    previous_rank = row["previous_rank"] if previous_score > 0 else None
    return Completion(committed.points, committed.score, row["rank"], previous_rank, False)
