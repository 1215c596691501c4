"""SQL of the admin analytics: aggregates over ``score_history`` and ``users``.

Each history query reads a range of UTC days through ``score_history_activity_idx`` (sql/006),
ordered by (day, player) and covering every column they use: an index-only range scan, never
the table. Every condition spells the indexed day expression
``(created_at AT TIME ZONE 'UTC')::date`` exactly, or the index cannot serve it. Completions are the
rows with an action (an operator's score adjustment has none and is not player activity).
Days and hours are UTC. perf/analytics_plans.py runs each statement below with EXPLAIN
(ANALYZE, BUFFERS) on 1 million rows.
"""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

from app.core.analytics import (
    SCORE_EDGES,
    TOP_ACTIONS,
    ActionFigures,
    DayRange,
    DayRow,
    Figures,
    HourRow,
)

# The most completed actions since $1, at most $2 (aggregated first, then named).
ACTIONS_SQL = """
SELECT t.action_id, COALESCE(a.name, t.action_id) AS name, t.completions, t.points
  FROM (SELECT action_id, count(*) AS completions, sum(score_change) AS points
          FROM score_history
         WHERE (created_at AT TIME ZONE 'UTC')::date >= $1 AND action_id IS NOT NULL
         GROUP BY action_id) AS t
  LEFT JOIN actions a ON a.id = t.action_id
 ORDER BY t.completions DESC, t.points DESC, t.action_id
 LIMIT $2
"""

# Completions and points per UTC hour since $1 (the day condition lets the index serve it).
HOURLY_SQL = """
SELECT date_trunc('hour', created_at, 'UTC') AS hour, count(*) AS completions,
       sum(score_change) AS points
  FROM score_history
 WHERE (created_at AT TIME ZONE 'UTC')::date >= ($1::timestamptz AT TIME ZONE 'UTC')::date
   AND created_at >= $1 AND action_id IS NOT NULL
 GROUP BY 1
"""

# Per UTC day since $1: completions, points and distinct active players (DAU). The index
# hands rows over in (day, player) order, so both levels are streaming group aggregates: no
# sort, no hash table, whatever the range.
DAILY_SQL = """
SELECT day, sum(completions)::bigint AS completions, sum(points)::bigint AS points,
       count(*) AS active
  FROM (SELECT (created_at AT TIME ZONE 'UTC')::date AS day, user_id,
               count(*) AS completions, sum(score_change) AS points
          FROM score_history
         WHERE (created_at AT TIME ZONE 'UTC')::date >= $1 AND action_id IS NOT NULL
         GROUP BY 1, 2) AS per_player
 GROUP BY day
"""

# Distinct players with a completion since the UTC day $1 (the 7-day active count, WAU).
# A rolling 7-day count for every day of a range would sort every (day, player) pair of it
# by player (about 0.9 s for 30 days of 1 million rows, measured): the report gives the
# current 7 days and the daily counts instead.
ACTIVE_SINCE_SQL = """
SELECT count(*)
  FROM (SELECT DISTINCT user_id
          FROM score_history
         WHERE (created_at AT TIME ZONE 'UTC')::date >= $1 AND action_id IS NOT NULL) AS players
"""

# Accounts created per UTC day since $1.
REGISTRATIONS_SQL = """
SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS registrations
  FROM users
 WHERE created_at >= $1
 GROUP BY 1
"""

# Every account by score bucket (width_bucket: 0 below the first edge, i.e. no points);
# banned accounts, on no board, as BANNED_BUCKET.
SCORES_SQL = """
SELECT CASE WHEN banned_at IS NULL THEN width_bucket(score, $1::bigint[]) ELSE -1 END AS bucket,
       count(*) AS players
  FROM users
 GROUP BY 1
"""


async def top_actions(
    conn: asyncpg.Connection, first_day: date, limit: int = TOP_ACTIONS
) -> list[ActionFigures]:
    rows = await conn.fetch(ACTIONS_SQL, first_day, limit)
    return [
        ActionFigures(r["action_id"], r["name"], int(r["completions"]), int(r["points"]))
        for r in rows
    ]


async def hourly(conn: asyncpg.Connection, since: datetime) -> list[HourRow]:
    rows = await conn.fetch(HOURLY_SQL, since)
    return [HourRow(r["hour"], int(r["completions"]), int(r["points"])) for r in rows]


async def daily(conn: asyncpg.Connection, first_day: date) -> list[DayRow]:
    rows = await conn.fetch(DAILY_SQL, first_day)
    return [
        DayRow(r["day"], int(r["completions"]), int(r["points"]), int(r["active"])) for r in rows
    ]


async def active_since(conn: asyncpg.Connection, first_day: date) -> int:
    return int(await conn.fetchval(ACTIVE_SINCE_SQL, first_day))


async def registrations(conn: asyncpg.Connection, since: datetime) -> dict[date, int]:
    rows = await conn.fetch(REGISTRATIONS_SQL, since)
    return {r["day"]: int(r["registrations"]) for r in rows}


async def score_counts(conn: asyncpg.Connection) -> dict[int, int]:
    rows = await conn.fetch(SCORES_SQL, list(SCORE_EDGES))
    return {int(r["bucket"]): int(r["players"]) for r in rows}


async def read_figures(pool: asyncpg.Pool, span: DayRange, hours_since: datetime) -> Figures:
    """Every figure from one snapshot (a read-only repeatable-read transaction), so the
    totals of one report agree with each other."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        return Figures(
            actions=await top_actions(conn, span.first),
            hours=await hourly(conn, hours_since),
            days=await daily(conn, span.first),
            weekly_active=await active_since(conn, span.week_first),
            registrations=await registrations(conn, span.since),
            scores=await score_counts(conn),
        )
