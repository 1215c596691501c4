"""SQL of the standings: the top of the ranking, straight from ``users``.

The order is the one ranking rule (app/core/ranking.py): ``score DESC, reached_at ASC, id DESC``.
"""

from __future__ import annotations

import asyncpg

from app.core.ports import StandingRow
from app.core.ranking import TOP_N

TOP_SQL = """
SELECT id::text AS user_id, username, score, reached_at
  FROM users
 WHERE score > 0 AND banned_at IS NULL  -- a banned player is on no board
 ORDER BY score DESC, reached_at ASC, id DESC
 LIMIT $1
"""


async def top_rows(
    conn: asyncpg.Connection | asyncpg.Pool, limit: int = TOP_N
) -> list[asyncpg.Record]:
    return list(await conn.fetch(TOP_SQL, limit))


class PgStandings:
    """The StandingsStore port on a PostgreSQL pool (the read replica when there is one)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def top(self, limit: int) -> list[StandingRow]:
        return [
            StandingRow(r["user_id"], r["username"], r["score"], r["reached_at"])
            for r in await top_rows(self._pool, limit)
        ]
