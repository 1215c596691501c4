"""SQL of the write path: ``score_history``, the score it adds to ``users`` and to each board.

The commit is one statement: the history row, the score change and every board's score for
its period happen together or not at all, and the unique (user, action, period) key turns a
duplicate into "nothing happened".

When the database fails, the commit says which of two things happened: nothing can have been
committed (no connection, or the server refused or cancelled the statement:
DatabaseUnavailable), or the statement was sent and no answer came back (a timeout, a broken
connection: CommitOutcomeUnknown). In the second case the server may still run it, so only a
retry can tell, and the unique key makes that retry safe.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import asyncpg

from app.core.errors import (
    AccountGone,
    CommitOutcomeUnknown,
    DatabaseUnavailable,
    DomainError,
)
from app.core.ports import BoardScore, Committed, PriorCompletion, Ranks
from app.core.verification import receipt_reused
from app.db.pool import DbTimeouts

log = logging.getLogger(__name__)

# Failures that mean the database could not be reached or did not answer.
DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

COMMIT_SQL = """
WITH clock AS (
    -- One instant for the history row, the new reach time and every board's period: the
    -- database's clock ($3 is NULL), or an explicit instant when a test stands at a boundary.
    SELECT COALESCE($3::timestamptz, clock_timestamp()) AS at
), action AS (
    SELECT a.id, a.points, a.tags, completion_period(a.repeat, clock.at) AS period
      FROM actions a, clock
     -- $5: the verification the node checked the proof against (NULL: no check, e.g. a
     -- server award). A node's catalog copy can be up to CATALOG_REFRESH_SECONDS old; an
     -- action switched since (say from claim to receipt) must not pass on the old rule.
     WHERE a.id = $2 AND a.active AND ($5::text IS NULL OR a.verification = $5::text)
), inserted AS (
    -- $4: the receipt id that proved it (NULL: none); its unique index refuses a replay.
    INSERT INTO score_history (user_id, action_id, period, score_change, created_at, receipt_jti)
    SELECT $1, action.id, action.period, action.points, clock.at, $4::text FROM action, clock
    ON CONFLICT (user_id, action_id, period) DO NOTHING
    RETURNING score_change
), scored AS (
    UPDATE users
       SET score = users.score + inserted.score_change,
           -- Strictly later than the user's previous change even if the clock steps back, so
           -- reached_at also orders this user's updates (the apply script relies on it).
           reached_at = GREATEST(clock.at, users.reached_at + interval '1 microsecond'),
           updated_at = clock_timestamp()
      FROM inserted, clock
     WHERE users.id = $1
    RETURNING users.username, users.score, users.reached_at, inserted.score_change AS points
), boarded AS (
    -- Every open board the action counts on, in its period at this instant (the all-time
    -- board of every action is users.score above). Runs after the user's row is locked, so
    -- one user's commits add up here in the same order as in users.score.
    INSERT INTO board_scores AS s (board_id, period, user_id, score, reached_at, updated_at)
    SELECT b.id, board_period(b.window_kind, b.id, b.starts_at, b.ends_at, clock.at), $1,
           scored.points, scored.reached_at, clock_timestamp()
      FROM scored, clock, action, boards b
     WHERE NOT (b.window_kind = 'all' AND b.action_tag IS NULL)
       AND (b.action_tag IS NULL OR b.action_tag = ANY (action.tags))
       AND (b.ended_at IS NULL OR clock.at < b.ended_at)
       AND board_period(b.window_kind, b.id, b.starts_at, b.ends_at, clock.at) IS NOT NULL
    ON CONFLICT (board_id, period, user_id) DO UPDATE
       SET score = s.score + EXCLUDED.score,
           reached_at = EXCLUDED.reached_at,
           updated_at = EXCLUDED.updated_at
    RETURNING s.board_id, s.period, s.score
), placed AS (
    SELECT boarded.board_id::text AS board_id, boarded.period, boarded.score,
           board_period_end(b.window_kind, b.starts_at, b.ends_at, clock.at) AS ends_at
      FROM boarded JOIN boards b ON b.id = boarded.board_id, clock
)
SELECT scored.username, scored.score, scored.reached_at, scored.points,
       ARRAY(SELECT board_id FROM placed ORDER BY board_id) AS board_ids,
       ARRAY(SELECT period FROM placed ORDER BY board_id) AS board_periods,
       ARRAY(SELECT score FROM placed ORDER BY board_id) AS board_scores,
       ARRAY(SELECT ends_at FROM placed ORDER BY board_id) AS board_ends
  FROM scored
"""

RECEIPT_JTI_KEY = "score_history_receipt_jti_key"  # sql/003_verification.sql

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
 WHERE score > $2 AND banned_at IS NULL  -- banned players are on no board
"""


async def commit_completion(
    conn: asyncpg.Connection | asyncpg.Pool,
    user_id: str,
    action_id: str,
    at: datetime | None = None,
    answer_within: float | None = None,
    receipt_jti: str | None = None,
    verified_as: str | None = None,
) -> Committed | None:
    """Record the completion and add its points, on ``users`` and on every board it counts
    on, in one statement; None when nothing was applied. ``at`` stands in for the database
    clock (tests at a period boundary); the service never passes it. ``answer_within``:
    seconds to wait for the answer (asyncpg's own timeout, which also asks the server to
    cancel); by default the connection's command timeout. ``receipt_jti``: the receipt id
    the completion was proved with; one already spent raises VerificationFailed.
    ``verified_as``: the verification kind the proof was checked against; nothing is applied
    when the action's kind in the table differs."""
    try:
        row = await conn.fetchrow(
            COMMIT_SQL, user_id, action_id, at, receipt_jti, verified_as, timeout=answer_within
        )
    except asyncpg.ForeignKeyViolationError:
        raise AccountGone() from None
    except asyncpg.UniqueViolationError as error:
        if error.constraint_name != RECEIPT_JTI_KEY:
            raise
        # Spent already, perhaps by another node an instant ago: the index decided.
        raise receipt_reused() from None
    return None if row is None else committed_from_row(user_id, row)


def committed_from_row(user_id: str, row: asyncpg.Record) -> Committed:
    """What a commit statement (single or grouped) answered for one user's completion."""
    boards = tuple(
        BoardScore(board_id, period, score, ends_at)
        for board_id, period, score, ends_at in zip(
            row["board_ids"],
            row["board_periods"],
            row["board_scores"],
            row["board_ends"],
            strict=True,
        )
    )
    return Committed(
        user_id, row["username"], row["score"], row["reached_at"], row["points"], boards
    )


def outcome_unknown(error: Exception) -> bool:
    """After sending a statement: could it have committed although this error came back?"""
    if isinstance(error, asyncpg.QueryCanceledError):
        return False  # the server cancelled it (statement_timeout): rolled back
    if isinstance(error, asyncpg.PostgresConnectionError | asyncpg.AdminShutdownError):
        return True  # the session ended mid-statement: before or after the commit, unknown
    # Any other answer from the server is a refusal (the statement rolled back); anything
    # else (a timeout, a socket error, a client-side failure) means no answer at all.
    return not isinstance(error, asyncpg.PostgresError)


class PgCompletions:
    """The CompletionStore port on a PostgreSQL pool."""

    def __init__(self, pool: asyncpg.Pool, timeouts: DbTimeouts) -> None:
        self._pool = pool
        self._timeouts = timeouts

    async def commit(
        self,
        user_id: str,
        action_id: str,
        receipt_jti: str | None = None,
        verified_as: str | None = None,
    ) -> Committed | None:
        try:
            conn = await self._pool.acquire(timeout=self._timeouts.acquire)
        except DATABASE_ERRORS as error:
            # Nothing was sent: no connection (the server is away, stopped, or the pool full).
            log.warning("commit not attempted, no database connection: %r", error)
            raise DatabaseUnavailable() from error
        try:
            return await commit_completion(
                conn,
                user_id,
                action_id,
                answer_within=self._timeouts.client_wait,
                receipt_jti=receipt_jti,
                verified_as=verified_as,
            )
        except DomainError:
            raise  # the server answered (AccountGone, a receipt already spent)
        except asyncpg.QueryCanceledError as error:
            raise DatabaseUnavailable(
                "The database did not complete this in time and cancelled it; nothing was "
                "changed. Retry with backoff."
            ) from error
        except Exception as error:
            if not outcome_unknown(error):
                raise
            # Drop the connection instead of waiting for asyncpg to cancel the statement: a
            # stopped server answers no cancel request either, and the answer must go now.
            conn.terminate()
            log.warning("commit outcome unknown for %s: %r", action_id, error)
            raise CommitOutcomeUnknown(action_id) from error
        finally:
            await self._pool.release(conn)

    async def prior(self, user_id: str, action_id: str) -> PriorCompletion | None:
        row = await self._pool.fetchrow(PRIOR_SQL, user_id, action_id)
        return None if row is None else PriorCompletion(row["created_at"], row["score_change"])

    async def receipt_used(self, receipt_jti: str) -> bool:
        return bool(
            await self._pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM score_history WHERE receipt_jti = $1)", receipt_jti
            )
        )

    async def verification_of(self, action_id: str) -> str | None:
        kind: str | None = await self._pool.fetchval(
            "SELECT verification FROM actions WHERE id = $1 AND active", action_id
        )
        return kind

    async def action_is_active(self, action_id: str) -> bool:
        return bool(
            await self._pool.fetchval("SELECT active FROM actions WHERE id = $1", action_id)
        )

    async def ranks(self, user_id: str, score: int, previous_score: int) -> Ranks:
        """Two tries, each within the rank timeout: the award is committed and its answer
        should not wait long for a rank. Raises the second failure."""
        try:
            row = await self._bounded_fetchrow(RANKS_SQL, score, previous_score, user_id)
        except DATABASE_ERRORS as error:
            log.info("rank read failed after a commit (%r); trying once more", error)
            row = await self._bounded_fetchrow(RANKS_SQL, score, previous_score, user_id)
        return Ranks(row["rank"], row["previous_rank"] if previous_score > 0 else None)

    async def _bounded_fetchrow(self, sql: str, *args: object) -> asyncpg.Record:
        """One read, the wait for a connection included, within the rank timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeouts.rank
        conn = await self._pool.acquire(timeout=self._timeouts.rank)
        try:
            return await conn.fetchrow(sql, *args, timeout=max(0.001, deadline - loop.time()))
        except Exception as error:
            if outcome_unknown(error):
                conn.terminate()  # see commit(): do not wait on a cancel nobody answers
            raise
        finally:
            await self._pool.release(conn)
