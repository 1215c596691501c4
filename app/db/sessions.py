"""SQL of ending sessions: ``session_revocations``, refresh-token families and bans, and the
listener that hears of new moments the instant they commit.

Moments are read as whole milliseconds rounded up, so a token issued in the same
millisecond as the moment counts as issued before it (refused rather than let through).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

import asyncpg

from app.core.sessions import Reason, Revocation

log = logging.getLogger(__name__)

RECENT_SQL = """
SELECT user_id::text, ceil(extract(epoch FROM not_before) * 1000)::bigint AS ms, reason
  FROM session_revocations
 WHERE not_before > clock_timestamp() - make_interval(secs => $1::float8 / 1000)
"""

REVOCATION_OF_SQL = """
SELECT user_id::text, ceil(extract(epoch FROM not_before) * 1000)::bigint AS ms, reason
  FROM session_revocations WHERE user_id = $1
"""

# A logout everywhere never hides why an account is refused (banned, deleted). The moment is
# the later of the database's clock and the caller's ($3, ms): tokens are stamped by the
# nodes' clocks, and one running ahead must not leave its latest tokens alive.
END_SESSIONS_SQL = """
WITH revoked AS (
    UPDATE refresh_tokens SET revoked = true WHERE user_id = $1 AND NOT revoked
), recorded AS (
    INSERT INTO session_revocations AS r (user_id, not_before, reason)
    VALUES ($1, GREATEST(clock_timestamp(), to_timestamp($3::float8 / 1000)), $2)
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

    async def end_sessions(self, user_id: str, reason: Reason, now_ms: int) -> Revocation:
        row = await self._pool.fetchrow(END_SESSIONS_SQL, user_id, reason.value, now_ms)
        return _revocation(row)

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


NOTIFY_CHANNEL = "session_revocations"  # sql/004: a trigger notifies every recorded moment
# How the listener's session shows in pg_stat_activity (it stays open for the node's life).
LISTENER_APPLICATION_NAME = "leaderboard-session-listener"
_BACKOFF_START, _BACKOFF_MAX = 0.2, 5.0
_IDLE_CHECK_SECONDS = 30.0


class RevocationListener:
    """LISTENs on its own connection for moments recorded in the database, however they
    were (a ban or a deletion in plain SQL included): every node learns at commit time.
    After a lost connection it reconnects with backoff and catches up with one poll."""

    def __init__(
        self,
        database_url: str,
        on_message: Callable[[bytes], None],
        catch_up: Callable[[], Awaitable[None]],
        connect_timeout: float,
    ) -> None:
        self._url = database_url
        self._on_message = on_message
        self._catch_up = catch_up
        self._connect_timeout = connect_timeout
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="session-revocations-listener")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        delay = _BACKOFF_START
        while True:
            try:
                await self._listen()
                delay = _BACKOFF_START  # a session that ended after working: retry soon
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("session revocations: not listening (%r); retrying", error)
            self.listening.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, _BACKOFF_MAX)

    async def _listen(self) -> None:
        conn = await asyncpg.connect(
            self._url,
            timeout=self._connect_timeout,
            server_settings={"application_name": LISTENER_APPLICATION_NAME},
        )
        try:
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(NOTIFY_CHANNEL, self._notified)
            await self._catch_up()  # whatever was recorded while nobody listened
            self.listening.set()
            while not lost.is_set():
                try:
                    await asyncio.wait_for(lost.wait(), _IDLE_CHECK_SECONDS)
                except TimeoutError:
                    # An idle connection whose peer vanished says nothing until used.
                    await conn.execute("SELECT 1", timeout=self._connect_timeout)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), self._connect_timeout)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        self._on_message(str(payload).encode())
