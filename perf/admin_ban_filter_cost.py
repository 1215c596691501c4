"""What hiding banned players costs a board read from PostgreSQL (app/db/boards.py).

    python -m perf.admin_ban_filter_cost [ADMIN_DATABASE_URL]

Makes a scratch database (dropped at the end) with 200,000 users, three weekly periods of
200,000 scores each and three banned users, then times each read (median of 15, prepared)
as it is and with the ban filter taken out. Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from app.db.boards import (
    _BOARD_SCORES,
    _BOARD_SCORES_BANNED,
    _USERS,
    _USERS_BANNED,
    AROUND_SQL,
    PAGE_SQL,
    TOTAL_SQL,
)
from app.db.migrations import migrate

SCRATCH = "admin_ban_filter_cost"
USERS = 200_000


def _without_filter(sql: str) -> str:
    """The read as before bans: every row, and nothing banned to subtract."""
    nothing_banned = "(SELECT * FROM board_scores WHERE false)"
    return (
        sql.replace(_BOARD_SCORES_BANNED, nothing_banned)
        .replace(_BOARD_SCORES, "board_scores")
        .replace(_USERS_BANNED, _USERS_BANNED.replace("banned_at IS NOT NULL", "false"))
        .replace(_USERS, _USERS.replace(" AND banned_at IS NULL", ""))
    )


async def _median_ms(conn: asyncpg.Connection, sql: str, args: tuple[object, ...]) -> float:
    statement = await conn.prepare(sql)
    for _ in range(3):
        await statement.fetch(*args)
    times = []
    for _ in range(15):
        started = time.perf_counter()
        await statement.fetch(*args)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def main(admin_url: str) -> None:
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH}")
    await admin.execute(f"CREATE DATABASE {SCRATCH}")
    conn = await asyncpg.connect(urlunsplit(urlsplit(admin_url)._replace(path=f"/{SCRATCH}")))
    try:
        await migrate(conn)
        await conn.execute(
            "INSERT INTO users (username, score) SELECT 'user' || g, (g * 7919) % 5000 + 1 "
            "FROM generate_series(1, $1) g",
            USERS,
        )
        for period in ("2026-W46", "2026-W47", "2026-W48"):
            await conn.execute(
                "INSERT INTO board_scores SELECT 'weekly', $1, id, score, reached_at, now() "
                "FROM users",
                period,
            )
        await conn.execute(
            "UPDATE users SET banned_at = now() WHERE username IN ('user5', 'user77', 'user1000')"
        )
        await conn.execute("VACUUM ANALYZE")
        mid = await conn.fetchrow(
            "SELECT score, reached_at, user_id FROM board_scores "
            "WHERE board_id = 'weekly' AND period = '2026-W48' "
            "ORDER BY score DESC, reached_at, user_id DESC OFFSET $1 LIMIT 1",
            USERS // 2,
        )
        week = ("weekly", "2026-W48")
        cases = [
            ("weekly page 1", PAGE_SQL.scores, (*week, 100, None, None, None)),
            ("weekly page mid", PAGE_SQL.scores, (*week, 100, *mid.values())),
            ("weekly around", AROUND_SQL.scores, (*week, mid["user_id"], 10)),
            ("weekly total", TOTAL_SQL.scores, week),
            ("all-time page mid", PAGE_SQL.users, ("all-time", "all", 100, *mid.values())),
            ("all-time total", TOTAL_SQL.users, ("all-time", "all")),
        ]
        print(f"{'read':<20} {'filtered':>10} {'unfiltered':>11}  (ms, median of 15)")
        for name, sql, args in cases:
            filtered = await _median_ms(conn, sql, args)
            unfiltered = await _median_ms(conn, _without_filter(sql), args)
            print(f"{name:<20} {filtered:>10.2f} {unfiltered:>11.2f}")
    finally:
        await conn.close()
        await admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
        await admin.close()


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1/postgres")
    )
