"""SQL of bans: ``users.banned_at`` / ``ban_reason`` (sql/004), set and lifted with their audit
entry in one transaction.

Setting ``banned_at`` fires the sessions trigger (sql/004): the moment is recorded and the
user's refresh tokens revoked in the same transaction. ``updated_at`` moves too, so the
reconciler's next incremental pass sees the user (and drops them from, or puts them back
into, every ranking even if the immediate Redis update was lost). The user's scores and
history are kept: every ranking read skips banned users instead, so an unban restores them
exactly.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from app.core.admin import BanChange, CurrentPeriods
from app.core.audit import AuditRecord
from app.core.boards import ALL_PERIOD, ALL_TIME
from app.core.ports import RestoredStanding
from app.core.tokens import Identity
from app.db import audit
from app.db.adjustments import lock_user

BAN_SQL = """
UPDATE users SET banned_at = clock_timestamp(), ban_reason = $2, updated_at = clock_timestamp()
 WHERE id = $1
RETURNING banned_at
"""

UNBAN_SQL = """
UPDATE users SET banned_at = NULL, ban_reason = NULL, updated_at = clock_timestamp()
 WHERE id = $1
"""

# Tokens from before the ban stay refused, now as an ended session (as app/db/sessions.py).
RELABEL_SQL = """
UPDATE session_revocations SET reason = 'logout' WHERE user_id = $1 AND reason = 'banned'
"""

# The user's scores in the given (board, period) pairs: what the rankings get back.
STANDINGS_SQL = """
SELECT s.board_id::text AS board_id, s.period, s.score, s.reached_at
  FROM board_scores s
  JOIN unnest($2::text[], $3::text[]) AS c (board_id, period)
    ON c.board_id = s.board_id AND c.period = s.period
 WHERE s.user_id = $1
"""


async def ban(
    conn: asyncpg.Connection, admin: Identity, user_id: str, reason: str, current: CurrentPeriods
) -> BanChange:
    async with conn.transaction():
        user = await lock_user(conn, user_id)
        if user["banned_at"] is not None:
            return BanChange(user_id, user["username"], False, user["banned_at"])
        banned_at: datetime = await conn.fetchval(BAN_SQL, user_id, reason)
        entry = await audit.record(
            conn,
            AuditRecord(
                admin=admin,
                action="user.ban",
                target=f"user:{user_id}",
                details={"username": user["username"], "score": user["score"]},
                reason=reason,
            ),
        )
    return BanChange(user_id, user["username"], True, banned_at, entry.id)


async def unban(
    conn: asyncpg.Connection, admin: Identity, user_id: str, reason: str, current: CurrentPeriods
) -> BanChange:
    async with conn.transaction():
        user = await lock_user(conn, user_id)
        if user["banned_at"] is None:
            return BanChange(user_id, user["username"], False, None)
        await conn.execute(UNBAN_SQL, user_id)
        await conn.execute(RELABEL_SQL, user_id)
        entry = await audit.record(
            conn,
            AuditRecord(
                admin=admin,
                action="user.unban",
                target=f"user:{user_id}",
                details={
                    "username": user["username"],
                    "score": user["score"],
                    "bannedAt": user["banned_at"].isoformat(),
                },
                reason=reason,
            ),
        )
        rows = await conn.fetch(
            STANDINGS_SQL, user_id, [c[0] for c in current], [c[1] for c in current]
        )
    ends = {(board, period): ends_at for board, period, ends_at in current}
    standings = (
        [
            RestoredStanding(
                user_id,
                user["username"],
                ALL_TIME,
                ALL_PERIOD,
                user["score"],
                user["reached_at"],
                None,
            )
        ]
        if user["score"] > 0
        else []
    )
    standings += [
        RestoredStanding(
            user_id,
            user["username"],
            r["board_id"],
            r["period"],
            r["score"],
            r["reached_at"],
            ends.get((r["board_id"], r["period"])),
        )
        for r in rows
    ]
    return BanChange(user_id, user["username"], True, None, entry.id, tuple(standings))


async def is_banned(conn: asyncpg.Connection | asyncpg.Pool, user_id: str) -> bool:
    return bool(
        await conn.fetchval("SELECT banned_at IS NOT NULL FROM users WHERE id = $1", user_id)
    )


class PgBans:
    """The BanStore port on a PostgreSQL pool (the primary)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def ban(
        self, admin: Identity, user_id: str, reason: str, current: CurrentPeriods
    ) -> BanChange:
        async with self._pool.acquire() as conn:
            return await ban(conn, admin, user_id, reason, current)

    async def unban(
        self, admin: Identity, user_id: str, reason: str, current: CurrentPeriods
    ) -> BanChange:
        async with self._pool.acquire() as conn:
            return await unban(conn, admin, user_id, reason, current)

    async def is_banned(self, user_id: str) -> bool:
        return await is_banned(self._pool, user_id)
