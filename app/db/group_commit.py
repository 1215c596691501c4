"""Group commit: completions that arrive together commit in one statement, each still
answered with its own result.

Under load every completion was one statement, one round trip and one WAL flush, on cores
PostgreSQL shares with the service. Here a completion that finds a statement of its process
already in flight (at most ``max_in_flight``) waits for it and goes with the others that
queued meanwhile, in one ``GROUP_COMMIT_SQL`` (COMMIT_SQL over arrays). A completion that
finds none in flight goes at once (a group of one): at low load nothing waits. Every
statement locks its users' rows first, in id order, so groups sharing users (a burst from
one user reaching both workers) queue behind each other instead of deadlocking.

Exactness is that of the single statement:

- a group holds at most one completion per user and per receipt id (the rest wait for the
  next group), so no row is touched twice in one statement and each user's commits still add
  up in order;
- a completion the group did not apply (a repeat, an action inactive, a user gone) answers
  None, as the single statement does, and the core asks why (ALREADY_COMPLETED,
  INVALID_ACTION, AccountGone);
- when the server refuses the group (a receipt id spent: its unique index; a deadlock with
  a statement of another kind) the statement applied nothing, so each of its completions is
  committed again on its own (PgCompletions.commit) and answers exactly as it would have
  alone (receipt_reused, ...);
- no connection, or a statement the server cancelled: DatabaseUnavailable for each (nothing
  was applied); sent and never answered: CommitOutcomeUnknown for each (any of them may be
  recorded, and a retry answers ALREADY_COMPLETED for those that were).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field

import asyncpg

from app.core.errors import CommitOutcomeUnknown, DatabaseUnavailable
from app.core.ports import Committed, PriorCompletion, Ranks
from app.db.completions import (
    DATABASE_ERRORS,
    PgCompletions,
    committed_from_row,
    outcome_unknown,
)
from app.db.pool import DbTimeouts

log = logging.getLogger(__name__)

# COMMIT_SQL (app/db/completions.py) over arrays: $1 user ids, $2 action ids, $3 receipt ids
# (NULL: none), $5 the verification kind each proof was checked against (NULL: no check), one
# element per completion, at most one per user; $4 as COMMIT_SQL's $3.
# Keep the two in step: tests/test_group_commit.py checks they record the same.
GROUP_COMMIT_SQL = """
WITH clock AS (
    SELECT COALESCE($4::timestamptz, clock_timestamp()) AS at
), locked AS MATERIALIZED (
    -- Every statement locks its users' rows first, in one order (by id), before it writes
    -- anything of theirs: two groups sharing users wait for each other instead of
    -- deadlocking (a single COMMIT_SQL inserts first and locks after, which is safe only
    -- when a statement touches one user).
    SELECT id FROM users WHERE id = ANY ($1::uuid[]) ORDER BY id FOR UPDATE
), wanted AS (
    SELECT w.user_id, w.action_id, w.receipt_jti, w.verified_as
      FROM unnest($1::uuid[], $2::text[], $3::text[], $5::text[])
           AS w(user_id, action_id, receipt_jti, verified_as)
      JOIN locked ON locked.id = w.user_id
), action AS (
    SELECT wanted.user_id, a.id, a.points, a.tags, completion_period(a.repeat, clock.at) AS period,
           wanted.receipt_jti
      FROM wanted
      JOIN actions a
        ON a.id = wanted.action_id AND a.active
       AND (wanted.verified_as IS NULL OR a.verification = wanted.verified_as),
           clock
), inserted AS (
    INSERT INTO score_history (user_id, action_id, period, score_change, created_at, receipt_jti)
    SELECT action.user_id, action.id, action.period, action.points, clock.at, action.receipt_jti
      FROM action, clock
    ON CONFLICT (user_id, action_id, period) DO NOTHING
    RETURNING user_id, score_change
), scored AS (
    UPDATE users
       SET score = users.score + inserted.score_change,
           reached_at = GREATEST(clock.at, users.reached_at + interval '1 microsecond'),
           updated_at = clock_timestamp()
      FROM inserted, clock
     WHERE users.id = inserted.user_id
    RETURNING users.id AS user_id, users.username, users.score, users.reached_at,
              inserted.score_change AS points
), boarded AS (
    INSERT INTO board_scores AS s (board_id, period, user_id, score, reached_at, updated_at)
    SELECT b.id, board_period(b.window_kind, b.id, b.starts_at, b.ends_at, clock.at),
           scored.user_id, scored.points, scored.reached_at, clock_timestamp()
      FROM scored JOIN action ON action.user_id = scored.user_id, clock, boards b
     WHERE NOT (b.window_kind = 'all' AND b.action_tag IS NULL)
       AND (b.action_tag IS NULL OR b.action_tag = ANY (action.tags))
       AND (b.ended_at IS NULL OR clock.at < b.ended_at)
       AND board_period(b.window_kind, b.id, b.starts_at, b.ends_at, clock.at) IS NOT NULL
    ON CONFLICT (board_id, period, user_id) DO UPDATE
       SET score = s.score + EXCLUDED.score,
           reached_at = EXCLUDED.reached_at,
           updated_at = EXCLUDED.updated_at
    RETURNING s.user_id, s.board_id, s.period, s.score
), placed AS (
    SELECT boarded.user_id, boarded.board_id::text AS board_id, boarded.period, boarded.score,
           board_period_end(b.window_kind, b.starts_at, b.ends_at, clock.at) AS ends_at
      FROM boarded JOIN boards b ON b.id = boarded.board_id, clock
)
SELECT scored.user_id::text AS user_id, scored.username, scored.score, scored.reached_at,
       scored.points,
       ARRAY(SELECT board_id FROM placed p WHERE p.user_id = scored.user_id
              ORDER BY board_id) AS board_ids,
       ARRAY(SELECT period FROM placed p WHERE p.user_id = scored.user_id
              ORDER BY board_id) AS board_periods,
       ARRAY(SELECT score FROM placed p WHERE p.user_id = scored.user_id
              ORDER BY board_id) AS board_scores,
       ARRAY(SELECT ends_at FROM placed p WHERE p.user_id = scored.user_id
              ORDER BY board_id) AS board_ends
  FROM scored
"""

MAX_GROUP = 64
MAX_IN_FLIGHT = 2


@dataclass
class _Pending:
    user_id: str
    action_id: str
    receipt_jti: str | None
    verified_as: str | None
    answer: asyncio.Future[Committed | None] = field(repr=False)


class GroupCommitStore:
    """The CompletionStore port: ``commit`` grouped as above, everything else as ``inner``."""

    def __init__(
        self,
        inner: PgCompletions,
        pool: asyncpg.Pool,
        timeouts: DbTimeouts,
        max_group: int = MAX_GROUP,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._inner = inner
        self._pool = pool
        self._timeouts = timeouts
        self._max_group = max_group
        self._max_in_flight = max_in_flight
        self._queue: deque[_Pending] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.groups = 0  # statements sent with more than one completion (tests, metrics)
        self.refused = 0  # statements the server refused (each then committed alone)

    async def commit(
        self,
        user_id: str,
        action_id: str,
        receipt_jti: str | None = None,
        verified_as: str | None = None,
    ) -> Committed | None:
        answer: asyncio.Future[Committed | None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(user_id, action_id, receipt_jti, verified_as, answer))
        self._dispatch()
        # Shielded: a caller that gives up (its client left) does not take the statement with
        # it; the others in its group still get their answers.
        return await asyncio.shield(answer)

    def _dispatch(self) -> None:
        while self._queue and self._in_flight < self._max_in_flight:
            group = self._take_group()
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._run(group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take_group(self) -> list[_Pending]:
        """The oldest waiting completions, at most one per user and per receipt id; the
        others keep their place for the next group."""
        group: list[_Pending] = []
        users: set[str] = set()
        receipts: set[str] = set()
        kept: deque[_Pending] = deque()
        while self._queue and len(group) < self._max_group:
            pending = self._queue.popleft()
            if pending.user_id in users or (
                pending.receipt_jti is not None and pending.receipt_jti in receipts
            ):
                kept.append(pending)
                continue
            users.add(pending.user_id)
            if pending.receipt_jti is not None:
                receipts.add(pending.receipt_jti)
            group.append(pending)
        kept.extend(self._queue)
        self._queue = kept
        return group

    async def _run(self, group: list[_Pending]) -> None:
        # A group of one too: every statement of this store locks its users in the same
        # order (see GROUP_COMMIT_SQL).
        try:
            await self._together(group)
        finally:
            self._in_flight -= 1
            self._dispatch()

    async def _alone(self, pending: _Pending) -> None:
        try:
            result = await self._inner.commit(
                pending.user_id, pending.action_id, pending.receipt_jti, pending.verified_as
            )
        except BaseException as error:
            _fail(pending, error)
            if not isinstance(error, Exception):
                raise
        else:
            _answer(pending, result)

    async def _together(self, group: list[_Pending]) -> None:
        if len(group) > 1:
            self.groups += 1
        try:
            rows = await self._send(group)
        except _Refused as refused:
            self.refused += 1
            # Nothing was applied: each goes again on its own, for its own exact answer.
            log.info("group of %d refused (%r); committing each alone", len(group), refused)
            await asyncio.gather(*(self._alone(p) for p in group))
            return
        except BaseException as error:
            for pending in group:
                _fail(pending, error)
            if not isinstance(error, Exception):
                raise
            return
        by_user = {row["user_id"]: row for row in rows}
        for pending in group:
            row = by_user.get(pending.user_id)
            _answer(pending, None if row is None else committed_from_row(pending.user_id, row))

    async def _send(self, group: list[_Pending]) -> list[asyncpg.Record]:
        """The group's statement, its failures sorted as PgCompletions.commit sorts one's."""
        try:
            conn = await self._pool.acquire(timeout=self._timeouts.acquire)
        except DATABASE_ERRORS as error:
            log.warning("commit not attempted, no database connection: %r", error)
            raise DatabaseUnavailable() from error
        try:
            rows: list[asyncpg.Record] = await conn.fetch(
                GROUP_COMMIT_SQL,
                [p.user_id for p in group],
                [p.action_id for p in group],
                [p.receipt_jti for p in group],
                None,
                [p.verified_as for p in group],
                timeout=self._timeouts.client_wait,
            )
            return rows
        except asyncpg.QueryCanceledError as error:
            raise DatabaseUnavailable(
                "The database did not complete this in time and cancelled it; nothing was "
                "changed. Retry with backoff."
            ) from error
        except asyncpg.PostgresError as error:
            if outcome_unknown(error):
                conn.terminate()
                raise _unknown(group, error) from error
            raise _Refused(error) from error  # the server answered: it applied nothing
        except Exception as error:
            if not outcome_unknown(error):
                raise
            conn.terminate()
            raise _unknown(group, error) from error
        finally:
            await self._pool.release(conn)

    # -- the rest of the port, as the inner store ------------------------------------------

    async def prior(self, user_id: str, action_id: str) -> PriorCompletion | None:
        return await self._inner.prior(user_id, action_id)

    async def receipt_used(self, receipt_jti: str) -> bool:
        return await self._inner.receipt_used(receipt_jti)

    async def verification_of(self, action_id: str) -> str | None:
        return await self._inner.verification_of(action_id)

    async def action_is_active(self, action_id: str) -> bool:
        return await self._inner.action_is_active(action_id)

    async def ranks(self, user_id: str, score: int, previous_score: int) -> Ranks:
        return await self._inner.ranks(user_id, score, previous_score)

    async def close(self) -> None:
        """Let groups in flight finish (their callers are answered)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class _Refused(Exception):
    """The server refused the group's statement: nothing of it was applied."""


class _GroupOutcomeUnknown(Exception):
    """The group's statement was sent and no answer came: each answers CommitOutcomeUnknown."""


def _unknown(group: list[_Pending], error: BaseException) -> _GroupOutcomeUnknown:
    log.warning("commit outcome unknown for a group of %d: %r", len(group), error)
    return _GroupOutcomeUnknown(repr(error))


def _fail(pending: _Pending, error: BaseException) -> None:
    if pending.answer.done():
        return
    # Each caller gets an error of its own (one instance raised in many tasks would collect
    # all their tracebacks).
    if isinstance(error, _GroupOutcomeUnknown):
        error = CommitOutcomeUnknown(pending.action_id)
    elif isinstance(error, DatabaseUnavailable):
        error = DatabaseUnavailable(error.message)
    if isinstance(error, asyncio.CancelledError):
        pending.answer.cancel()
    else:
        pending.answer.set_exception(error)


def _answer(pending: _Pending, result: Committed | None) -> None:
    if not pending.answer.done():
        pending.answer.set_result(result)
