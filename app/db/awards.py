"""SQL of ``server_awards``: one row per (API key, idempotency key), inserted in the same
transaction as the award it commits.

Concurrent requests with one idempotency key: the first INSERT takes the unique key, the
others' INSERT ... ON CONFLICT DO NOTHING wait on it until the first transaction ends. If it
committed they insert nothing and read its row; if it rolled back (a refusal), one of them
goes on as the first. So exactly one award, whatever the concurrency, on every node.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from app.core.awards import AwardOutcome, AwardRequest, Fresh, NotApplied, Repeat, StoredAward
from app.core.board_reads import UserNotFound
from app.core.errors import AccountBanned, AccountGone
from app.db.completions import commit_completion

CLAIM_SQL = """
INSERT INTO server_awards (api_key_id, idempotency_key, request_hash, user_id, action_id)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (api_key_id, idempotency_key) DO NOTHING
RETURNING true
"""

STORED_SQL = """
SELECT request_hash, points, new_score, response
  FROM server_awards WHERE api_key_id = $1 AND idempotency_key = $2
"""

# Locks the user's row before the commit writes, the order a group commit takes
# (app/db/group_commit.py): an award and a group holding the same user queue, never deadlock;
# a ban (an UPDATE of that row) waits for the award or is seen by it.
ACCOUNT_SQL = "SELECT banned_at IS NOT NULL FROM users WHERE id = $1 FOR UPDATE"

COMMITTED_SQL = """
UPDATE server_awards SET points = $3, new_score = $4
 WHERE api_key_id = $1 AND idempotency_key = $2
"""

# First writer wins: a repeat that built the answer itself never overwrites the first's.
SETTLE_SQL = """
WITH settled AS (
    UPDATE server_awards SET response = $3
     WHERE api_key_id = $1 AND idempotency_key = $2 AND response IS NULL
    RETURNING response
)
SELECT response FROM settled
UNION ALL
SELECT response FROM server_awards WHERE api_key_id = $1 AND idempotency_key = $2
LIMIT 1
"""


def _stored(row: asyncpg.Record) -> StoredAward:
    response = row["response"]
    return StoredAward(
        bytes(row["request_hash"]),
        row["points"],
        row["new_score"],
        None if response is None else orjson.loads(response),
    )


class PgAwards:
    """The AwardStore port on a PostgreSQL pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def award(self, api_key_id: str, request: AwardRequest, digest: bytes) -> AwardOutcome:
        key = (api_key_id, request.idempotency_key)
        async with self._pool.acquire() as conn:
            try:
                async with conn.transaction():
                    claimed = await conn.fetchval(
                        CLAIM_SQL, *key, digest, request.user_id, request.action_id
                    )
                    if not claimed:
                        row = await conn.fetchrow(STORED_SQL, *key)
                        return Repeat(_stored(row))
                    banned = await conn.fetchval(ACCOUNT_SQL, request.user_id)
                    if banned is None:
                        raise UserNotFound(request.user_id)
                    if banned:
                        raise AccountBanned()
                    committed = await commit_completion(conn, request.user_id, request.action_id)
                    if committed is None:
                        raise _NothingApplied()  # rolls the claim back: a retry decides anew
                    await conn.execute(COMMITTED_SQL, *key, committed.points, committed.score)
            except _NothingApplied:
                return NotApplied()
            except AccountGone:
                raise UserNotFound(request.user_id) from None
        return Fresh(committed)

    async def stored(self, api_key_id: str, idempotency_key: str) -> StoredAward | None:
        row = await self._pool.fetchrow(STORED_SQL, api_key_id, idempotency_key)
        return None if row is None else _stored(row)

    async def settle(
        self, api_key_id: str, idempotency_key: str, response: dict[str, Any]
    ) -> dict[str, Any]:
        stored = await self._pool.fetchval(
            SETTLE_SQL, api_key_id, idempotency_key, orjson.dumps(response).decode()
        )
        settled: dict[str, Any] = orjson.loads(stored)
        return settled


class _NothingApplied(Exception):
    """Leaves the transaction (rolling the claim back) when the commit changed nothing."""
