"""SQL of ending sessions: ``session_revocations``, refresh-token families and bans.

Moments are read as whole milliseconds rounded up, so a token issued in the same
millisecond as the moment counts as issued before it (refused rather than let through).
"""

from __future__ import annotations

import uuid

import asyncpg

from app.core.sessions import Reason, Revocation

RECENT_SQL = """
SELECT user_id::text, ceil(extract(epoch FROM not_before) * 1000)::bigint AS ms, reason
  FROM session_revocations
 WHERE not_before > clock_timestamp() - make_interval(secs => $1::float8 / 1000)
"""

REVOCATION_OF_SQL = """
SELECT user_id::text, ceil(extract(epoch FROM not_before) * 1000)::bigint AS ms, reason
  FROM session_revocations WHERE user_id = $1
"""

# A logout everywhere never hides why an account is refused (banned, deleted).
END_SESSIONS_SQL = """
WITH revoked AS (
    UPDATE refresh_tokens SET revoked = true WHERE user_id = $1 AND NOT revoked
), recorded AS (
    INSERT INTO session_revocations AS r (user_id, not_before, reason)
    VALUES ($1, clock_timestamp(), $2)
    ON CONFLICT (user_id) DO UPDATE
       SET not_before = GREATEST(r.not_before, EXCLUDED.not_before),
           reason = CASE WHEN r.reason <> 'logout' AND EXCLUDED.reason = 'logout'
                         THEN r.reason ELSE EXCLUDED.reason END
    RETURNING user_id, not_before, reason
)
SELECT user_id::text, ceil(extract(epoch FROM not_before) * 1000)::bigint AS ms, reason
  FROM recorded
"""

REVOKE_FAMILY_SQL = """
UPDATE refresh_tokens SET revoked = true
 WHERE family = (SELECT family FROM refresh_tokens WHERE token_hash = $1) AND NOT revoked
"""

# The trigger on users.banned_at records the moment and revokes the refresh tokens.
BAN_SQL = """
UPDATE users SET banned_at = COALESCE(banned_at, clock_timestamp()), ban_reason = $2
 WHERE id = $1
RETURNING id
"""

UNBAN_SQL = """
WITH lifted AS (
    UPDATE users SET banned_at = NULL, ban_reason = NULL WHERE id = $1 RETURNING id
), relabelled AS (
    -- Tokens from before the ban stay refused, now as an ended session.
    UPDATE session_revocations SET reason = 'logout'
     WHERE user_id = $1 AND reason = 'banned' AND EXISTS (SELECT FROM lifted)
)
SELECT count(*) FROM lifted
"""


def _revocation(row: asyncpg.Record) -> Revocation:
    return Revocation(row["user_id"], row["ms"], Reason(row["reason"]))


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


class PgSessions:
    """The RevocationStore port on a PostgreSQL pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def recent(self, within_ms: int) -> list[Revocation]:
        return [_revocation(row) for row in await self._pool.fetch(RECENT_SQL, within_ms)]

    async def end_sessions(self, user_id: str, reason: Reason) -> Revocation:
        return _revocation(await self._pool.fetchrow(END_SESSIONS_SQL, user_id, reason.value))

    async def revoke_family(self, refresh_digest: bytes) -> None:
        await self._pool.execute(REVOKE_FAMILY_SQL, refresh_digest)

    async def ban(self, user_id: str, reason: str | None) -> Revocation | None:
        who = _uuid(user_id)
        if who is None:
            return None
        async with self._pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(BAN_SQL, who, reason) is None:
                return None
            row = await conn.fetchrow(REVOCATION_OF_SQL, who)
        return _revocation(row)

    async def unban(self, user_id: str) -> bool:
        who = _uuid(user_id)
        return who is not None and bool(await self._pool.fetchval(UNBAN_SQL, who))

    async def revocation_of(self, user_id: str) -> Revocation | None:
        who = _uuid(user_id)
        row = None if who is None else await self._pool.fetchrow(REVOCATION_OF_SQL, who)
        return None if row is None else _revocation(row)
