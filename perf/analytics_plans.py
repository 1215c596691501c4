"""The admin analytics' query plans and timings on 1 million history rows.

    .venv/bin/python -m perf.analytics_plans [--database-url URL] [--rows 1000000] [--runs 7]

Makes a scratch database on the server (default postgresql://postgres@127.0.0.1:5432/postgres),
migrates it, loads 100,000 players and ``--rows`` completions of 60 actions over 90 days
(popular actions and busy players are skewed, as in a real game), VACUUM ANALYZEs, then runs
every statement of app/db/analytics.py with EXPLAIN (ANALYZE, BUFFERS) ``--runs`` times, at
``days`` 30 and 365, in a read-only repeatable-read transaction as the service runs them.
Writes each statement's median execution time and the plan of its median run to
perf/results/analytics_plans.txt, prints the medians, and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from app.core.analytics import SCORE_EDGES, TOP_ACTIONS, DayRange, first_hour
from app.db import analytics
from app.db.migrations import migrate

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
OUT = Path(__file__).parent / "results" / "analytics_plans.txt"
PLAYERS = 100_000
ACTIONS = 60
HISTORY_DAYS = 90

LOAD_SQL = [
    f"""INSERT INTO actions (id, name, points)
        SELECT 'a' || lpad(i::text, 2, '0'), 'Action ' || i, 1 + (i * 37) % 100
          FROM generate_series(1, {ACTIONS}) AS i""",
    f"""INSERT INTO users (username, created_at)
        SELECT 'perf_' || i, now() - random() * interval '120 days'
          FROM generate_series(1, {PLAYERS}) AS i""",
    # Skewed: random()^2 makes low action numbers and low player numbers the busy ones. The
    # period is the row number, so the unique (user, action, period) never collides.
    """WITH ids AS (SELECT array_agg(id ORDER BY username) AS id FROM users)
       INSERT INTO score_history (user_id, action_id, period, score_change, created_at)
       SELECT ids.id[1 + floor(random() ^ 2 * {players})::int],
              'a' || lpad(n::text, 2, '0'),
              i::text,
              1 + (n * 37) % 100,
              now() - random() * interval '{days} days'
         FROM ids, generate_series(1, {rows}) AS i,
              LATERAL (SELECT 1 + floor(random() ^ 2 * {actions})::int + 0 * i AS n) AS pick""",
    """UPDATE users u SET score = s.total
         FROM (SELECT user_id, sum(score_change) AS total FROM score_history GROUP BY user_id) s
        WHERE u.id = s.user_id""",
]


def statements(days: int, now: datetime) -> list[tuple[str, str, list[object]]]:
    span = DayRange.ending(now, days)
    return [
        (f"top actions, {days} days", analytics.ACTIONS_SQL, [span.first, TOP_ACTIONS]),
        ("completions per hour, 48 h", analytics.HOURLY_SQL, [first_hour(now)]),
        (f"per day (completions, points, DAU), {days} days", analytics.DAILY_SQL, [span.first]),
        ("7-day active players (WAU)", analytics.ACTIVE_SINCE_SQL, [span.week_first]),
        (f"registrations per day, {days} days", analytics.REGISTRATIONS_SQL, [span.since]),
        ("score histogram (every account)", analytics.SCORES_SQL, [list(SCORE_EDGES)]),
    ]


async def explain(
    conn: asyncpg.Connection, sql: str, args: list[object], runs: int
) -> tuple[list[float], str]:
    timed: list[tuple[float, str]] = []
    for _ in range(runs):
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *args)
        plan = "\n".join(r[0] for r in rows)
        ms = float(plan.rsplit("Execution Time: ", 1)[1].split(" ms")[0])
        timed.append((ms, plan))
    timed.sort(key=lambda t: t[0])
    return [t[0] for t in timed], timed[len(timed) // 2][1]


async def plain(conn: asyncpg.Connection, sql: str, args: list[object], runs: int) -> list[float]:
    """Wall time of the statement as the service runs it (no EXPLAIN instrumentation, which
    adds a clock read per row and node), client round trip included."""
    times = []
    for _ in range(runs):
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            started = time.perf_counter()
            await conn.fetch(sql, *args)
            times.append((time.perf_counter() - started) * 1000)
    return sorted(times)


async def whole_report(url: str, days: int, runs: int) -> list[float]:
    """Wall time of every statement of one report (app/db/analytics.read_figures)."""
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    try:
        times = []
        for _ in range(runs):
            now = datetime.now(UTC)
            started = time.perf_counter()
            await analytics.read_figures(pool, DayRange.ending(now, days), first_hour(now))
            times.append((time.perf_counter() - started) * 1000)
        return sorted(times)
    finally:
        await pool.close()


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    name = f"lb_analytics_plans_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(with_database(args.database_url, name))
        try:
            await migrate(conn)
            started = time.perf_counter()
            for sql in LOAD_SQL:
                await conn.execute(
                    sql.format(players=PLAYERS, rows=args.rows, days=HISTORY_DAYS, actions=ACTIONS)
                )
            await conn.execute("VACUUM ANALYZE")
            loaded = time.perf_counter() - started
            print(f"loaded {args.rows:,} history rows, {PLAYERS:,} players in {loaded:.0f} s")
            report = await measure(conn, args.rows, args.runs)
            url = with_database(args.database_url, name)
            totals = ["", "the whole report (every statement, one snapshot, wall time), ms:"]
            for days in (30, 365):
                times = await whole_report(url, days, args.runs)
                line = (
                    f"  days={days:<4} median {statistics.median(times):8.1f}"
                    f"  ({times[0]:.1f} .. {times[-1]:.1f})"
                )
                print(line)
                totals.append(line)
            report = report.replace("\n\n== ", "\n" + "\n".join(totals) + "\n\n== ", 1)
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(f"wrote {args.out}")


async def measure(conn: asyncpg.Connection, rows: int, runs: int) -> str:
    now = datetime.now(UTC)
    version = await conn.fetchval("SELECT version()")
    sizes = await conn.fetch(
        """SELECT c.relname, pg_size_pretty(pg_relation_size(c.oid)) AS size
             FROM pg_class c
            WHERE c.relname IN ('score_history', 'score_history_activity_idx', 'users',
                                'users_created_at_idx')
            ORDER BY c.relname"""
    )
    header = [
        "Admin analytics: query plans and timings (perf/analytics_plans.py)",
        f"run at {now:%Y-%m-%d %H:%M} UTC on {platform.node()}, {version}",
        f"data: {rows:,} score_history rows over {HISTORY_DAYS} days, {PLAYERS:,} players, "
        f"{ACTIONS} actions (skewed); VACUUM ANALYZE after loading",
        "sizes: " + ", ".join(f"{r['relname']} {r['size']}" for r in sizes),
        f"each statement run {runs} times with EXPLAIN (ANALYZE, BUFFERS); the plan shown is "
        "the median run's",
        "",
    ]
    summary = [
        "median time (min .. max), ms: EXPLAIN ANALYZE execution | plain fetch, wall, as served"
    ]
    plans = []
    for days in (30, 365):
        for label, sql, params in statements(days, now):
            if days == 365 and any(s in label for s in ("48 h", "histogram", "WAU")):
                continue  # the same statement as at 30 days
            times, plan = await explain(conn, sql, params, runs)
            median = statistics.median(times)
            wall = await plain(conn, sql, params, runs)
            line = (
                f"  {label:<52} {median:8.1f}  ({times[0]:.1f} .. {times[-1]:.1f})"
                f" | {statistics.median(wall):8.1f}  ({wall[0]:.1f} .. {wall[-1]:.1f})"
            )
            print(line)
            summary.append(line)
            plans += [f"== {label}: median {median:.1f} ms", plan, ""]
    return "\n".join([*header, *summary, "", *plans])


if __name__ == "__main__":
    asyncio.run(main())
