"""SQL of score corrections: an operator's adjustment, and the removal of one completion.

Each runs in one transaction that first locks the user's row, the same lock a completion's
commit (app/db/completions.py) takes before it touches any board: one user's commits and
corrections therefore apply in one order, to ``users`` and to every board alike, and the
invariants hold after each (``users.score`` = the sum of the user's history; a board's score
in a period = the sum of the completions that counted on it in that window).

Which boards a correction touches:

- an **adjustment** counts on the all-time board only (``users.score``): period boards and
  tournaments rank what was played in their window, and a correction has no window. To take
  points off those, remove the completion that earned them;
- a **removal** takes the completion's points off every board it counted on: each board that
  existed when it was made, whose tag (if any) the action carries and that had not ended,
  in the period of the completion's time, where the user still has a score there. A row
  that reaches 0 is deleted (a board holds only positive scores).

The audit entry is written in the same transaction (app/db/audit.py).
"""

from __future__ import annotations

import asyncpg

from app.core.admin import Correction
from app.core.audit import AuditRecord
from app.core.errors import NotFound, ScoreWouldBeNegative
from app.core.ports import BoardScore, Committed
from app.core.tokens import Identity
from app.db import audit

# Every admin change to a user (corrections, bans) locks the user's row first: the order a
# commit takes, so they queue behind completions instead of deadlocking.
LOCK_USER_SQL = """
SELECT id::text AS user_id, username, score, reached_at, banned_at,
       banned_at IS NOT NULL AS banned, clock_timestamp() AS at
  FROM users WHERE id = $1 FOR UPDATE
"""

# A new score and reach time: strictly later than the user's previous change (as the commit
# does), so the ranking's idempotent apply takes it over any earlier standing.
SET_SCORE_SQL = """
UPDATE users
   SET score = $2,
       reached_at = GREATEST($3::timestamptz, reached_at + interval '1 microsecond'),
       updated_at = clock_timestamp()
 WHERE id = $1
RETURNING score, reached_at
"""

INSERT_ADJUSTMENT_SQL = """
INSERT INTO score_history (user_id, action_id, period, score_change, created_at, kind, reason)
VALUES ($1, NULL, '', $2, $3, 'adjustment', $4)
RETURNING id::text
"""

COMPLETION_SQL = """
SELECT h.id::text, h.action_id, h.score_change, h.created_at, COALESCE(a.tags, '{}') AS tags
  FROM score_history h LEFT JOIN actions a ON a.id = h.action_id
 WHERE h.id = $1 AND h.user_id = $2 AND h.kind = 'completion'
"""

# The boards the completion ($2 the action's tags, $3 its time) counted on, in the period of
# its time, with the user's ($1) score there: the conditions of the commit's `boarded` step,
# at the completion's instant, for boards that existed then.
COUNTED_ON_SQL = """
SELECT b.id::text AS board_id, s.period, s.score,
       board_period_end(b.window_kind, b.starts_at, b.ends_at, $3) AS ends_at
  FROM boards b
  JOIN board_scores s
    ON s.board_id = b.id AND s.user_id = $1
   AND s.period = board_period(b.window_kind, b.id, b.starts_at, b.ends_at, $3)
 WHERE NOT (b.window_kind = 'all' AND b.action_tag IS NULL)
   AND (b.action_tag IS NULL OR b.action_tag = ANY ($2::text[]))
   AND (b.ended_at IS NULL OR $3 < b.ended_at)
   AND b.created_at <= $3
 ORDER BY b.id
 FOR UPDATE OF s
"""

LOWER_BOARD_SQL = """
UPDATE board_scores SET score = score - $4, reached_at = $5, updated_at = clock_timestamp()
 WHERE board_id = $1 AND period = $2 AND user_id = $3
"""

DROP_BOARD_SQL = "DELETE FROM board_scores WHERE board_id = $1 AND period = $2 AND user_id = $3"


async def lock_user(conn: asyncpg.Connection, user_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(LOCK_USER_SQL, user_id)
    if row is None:
        raise NotFound(f"There is no user {user_id[:40]!r}.", userId=user_id[:40])
    return row


async def adjust(
    conn: asyncpg.Connection, admin: Identity, user_id: str, points: int, reason: str
) -> Correction:
    """Add ``points`` (negative: take away) to the user's all-time score, recorded in their
    history as an adjustment with ``reason``; ScoreWouldBeNegative, NotFound."""
    async with conn.transaction():
        user = await lock_user(conn, user_id)
        if user["score"] + points < 0:
            raise ScoreWouldBeNegative(user["score"], points)
        history_id = await conn.fetchval(INSERT_ADJUSTMENT_SQL, user_id, points, user["at"], reason)
        scored = await conn.fetchrow(SET_SCORE_SQL, user_id, user["score"] + points, user["at"])
        entry = await audit.record(
            conn,
            AuditRecord(
                admin=admin,
                action="score.adjust",
                target=f"user:{user_id}",
                details={
                    "username": user["username"],
                    "points": points,
                    "scoreBefore": user["score"],
                    "scoreAfter": scored["score"],
                    "historyId": history_id,
                },
                reason=reason,
            ),
        )
    committed = Committed(
        user_id, user["username"], scored["score"], scored["reached_at"], points, ()
    )
    return Correction(committed, user["score"], history_id, entry.id, banned=user["banned"])


async def remove_completion(
    conn: asyncpg.Connection, admin: Identity, user_id: str, completion_id: str, reason: str
) -> Correction:
    """Delete one of the user's completions and take its points off ``users.score`` and every
    board it counted on; NotFound for an unknown user or completion, ScoreWouldBeNegative when
    adjustments since leave less than its points."""
    async with conn.transaction():
        user = await lock_user(conn, user_id)
        found = await conn.fetchrow(COMPLETION_SQL, completion_id, user_id)
        if found is None:
            raise NotFound(
                f"The user has no completion {completion_id[:40]!r}.",
                completionId=completion_id[:40],
            )
        points, at = found["score_change"], found["created_at"]
        if user["score"] - points < 0:
            raise ScoreWouldBeNegative(user["score"], -points)
        counted = await conn.fetch(COUNTED_ON_SQL, user_id, list(found["tags"]), at)
        await conn.execute("DELETE FROM score_history WHERE id = $1", completion_id)
        scored = await conn.fetchrow(SET_SCORE_SQL, user_id, user["score"] - points, user["at"])
        boards = []
        for row in counted:
            left = max(0, row["score"] - points)
            key = (row["board_id"], row["period"], user_id)
            if left > 0:
                await conn.execute(LOWER_BOARD_SQL, *key, points, scored["reached_at"])
            else:
                await conn.execute(DROP_BOARD_SQL, *key)
            boards.append(BoardScore(row["board_id"], row["period"], left, row["ends_at"]))
        entry = await audit.record(
            conn,
            AuditRecord(
                admin=admin,
                action="completion.remove",
                target=f"user:{user_id}",
                details={
                    "username": user["username"],
                    "completionId": completion_id,
                    "actionId": found["action_id"],
                    "points": points,
                    "completedAt": at.isoformat(),
                    "scoreBefore": user["score"],
                    "scoreAfter": scored["score"],
                    "boards": [
                        {"boardId": b.board_id, "period": b.period, "score": b.score}
                        for b in boards
                    ],
                },
                reason=reason,
            ),
        )
    committed = Committed(
        user_id, user["username"], scored["score"], scored["reached_at"], -points, tuple(boards)
    )
    return Correction(
        committed,
        user["score"],
        completion_id,
        entry.id,
        found["action_id"],
        at,
        banned=user["banned"],
    )


class PgCorrections:
    """The CorrectionStore port on a PostgreSQL pool (the primary: these are writes)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def adjust(self, admin: Identity, user_id: str, points: int, reason: str) -> Correction:
        async with self._pool.acquire() as conn:
            return await adjust(conn, admin, user_id, points, reason)

    async def remove_completion(
        self, admin: Identity, user_id: str, completion_id: str, reason: str
    ) -> Correction:
        async with self._pool.acquire() as conn:
            return await remove_completion(conn, admin, user_id, completion_id, reason)
