"""The invariants every correction must keep, checked against the database and Redis:
``users.score`` = the sum of the user's history; every board's score in a period = the sum of
the completions that counted on it in that window; each current ranking in Redis = the
database's standings of that board and period (banned players in neither)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from redis.asyncio import Redis

from app.core.boards import ALL_PERIOD, ALL_TIME
from app.db.boards import list_boards
from app.redis.keys import Keys

HISTORY_MISMATCH_SQL = """
SELECT u.id::text, u.score, COALESCE(sum(h.score_change), 0) AS history
  FROM users u LEFT JOIN score_history h ON h.user_id = u.id
 GROUP BY u.id
HAVING u.score <> COALESCE(sum(h.score_change), 0)
"""

# What every board's scores should be: the completions that counted on it, by the commit's
# rules at their instant (boards that existed then, with the action's tag, not yet ended).
EXPECTED_BOARDS_SQL = """
SELECT b.id::text AS board_id,
       board_period(b.window_kind, b.id, b.starts_at, b.ends_at, h.created_at) AS period,
       h.user_id::text AS user_id, sum(h.score_change) AS score
  FROM score_history h
  JOIN actions a ON a.id = h.action_id
  JOIN boards b ON NOT (b.window_kind = 'all' AND b.action_tag IS NULL)
   AND (b.action_tag IS NULL OR b.action_tag = ANY (a.tags))
   AND (b.ended_at IS NULL OR h.created_at < b.ended_at)
   AND b.created_at <= h.created_at
 WHERE h.kind = 'completion'
   AND board_period(b.window_kind, b.id, b.starts_at, b.ends_at, h.created_at) IS NOT NULL
 GROUP BY 1, 2, 3
"""


async def history_mismatches(db: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await db.fetch(HISTORY_MISMATCH_SQL))


async def board_mismatches(db: asyncpg.Connection) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(board, period, user) -> (expected, stored) wherever they differ."""
    expected = {
        (r["board_id"], r["period"], r["user_id"]): int(r["score"])
        for r in await db.fetch(EXPECTED_BOARDS_SQL)
        if r["score"] > 0
    }
    stored = {
        (r["board_id"], r["period"], r["user_id"]): int(r["score"])
        for r in await db.fetch(
            "SELECT board_id::text, period, user_id::text, score FROM board_scores"
        )
    }
    return {
        key: (expected.get(key, 0), stored.get(key, 0))
        for key in expected.keys() | stored.keys()
        if expected.get(key, 0) != stored.get(key, 0)
    }


async def redis_ranking(redis: Redis, keys: Keys, board_id: str, period: str) -> dict[str, int]:
    rows = await redis.zrange(keys.board(board_id, period).ranking, 0, -1, withscores=True)
    return {member.decode().partition(":")[2]: int(score) for member, score in rows}


async def database_ranking(
    db: asyncpg.Connection, board_id: str, period: str, visible_sql: str = "true"
) -> dict[str, int]:
    """A board's standings in the database; ``visible_sql`` filters users (alias u)."""
    if board_id == ALL_TIME:
        sql = f"SELECT id::text AS user_id, score FROM users u WHERE score > 0 AND {visible_sql}"
        rows = await db.fetch(sql)
    else:
        sql = (
            "SELECT s.user_id::text AS user_id, s.score FROM board_scores s "
            f"JOIN users u ON u.id = s.user_id WHERE s.board_id = $1 AND s.period = $2 AND {visible_sql}"
        )
        rows = await db.fetch(sql, board_id, period)
    return {r["user_id"]: int(r["score"]) for r in rows}


async def ranking_mismatches(
    db: asyncpg.Connection, redis: Redis, keys: Keys, visible_sql: str = "true"
) -> dict[str, tuple[dict[str, int], dict[str, int]]]:
    """Every current ranking where Redis and the database differ: name -> (database, redis)."""
    now = datetime.now(UTC)
    found = {}
    targets = [(ALL_TIME, ALL_PERIOD)]
    for board in await list_boards(db):
        period = board.current_period(now)
        if period is not None and not board.is_all_time:
            targets.append((board.id, period.id))
    for board_id, period_id in targets:
        in_db = await database_ranking(db, board_id, period_id, visible_sql)
        in_redis = await redis_ranking(redis, keys, board_id, period_id)
        if in_db != in_redis:
            found[f"{board_id}:{period_id}"] = (in_db, in_redis)
    return found
