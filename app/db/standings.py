"""SQL of the standings: the top of the ranking, straight from ``users``.

The order is the one ranking rule (app/core/ranking.py): ``score DESC, reached_at ASC, id DESC``.
"""

from __future__ import annotations

import asyncpg

from app.core.ranking import TOP_N

TOP_SQL = """
SELECT id::text AS user_id, username, score, reached_at
  FROM users
 WHERE score > 0
 ORDER BY score DESC, reached_at ASC, id DESC
 LIMIT $1
"""


async def top_rows(
    conn: asyncpg.Connection | asyncpg.Pool, limit: int = TOP_N
) -> list[asyncpg.Record]:
    return list(await conn.fetch(TOP_SQL, limit))
