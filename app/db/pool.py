"""The PostgreSQL pool, with every wait bounded: connecting, getting a connection, a statement.

A stopped (not crashed) database answers nothing and refuses nothing, so without bounds a
request waits as long as the server stays stopped. Here:

- connecting gives up after ``connect`` seconds;
- getting a connection from the pool (which may mean connecting) after ``acquire`` seconds,
  for every caller, also those that never pass a timeout;
- the server cancels a statement that runs longer than ``statement`` seconds
  (``statement_timeout``) and rolls back a transaction left idle that long
  (``idle_in_transaction_session_timeout``), so a statement it is still running when the
  client has given up cannot commit afterwards;
- the client waits ``statement`` plus a grace second for an answer, so that a server which is
  merely slow reports its own cancellation (a definite "nothing was changed") before the
  client gives up not knowing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from app.core.settings import Settings

# How much longer the client waits than the server lets a statement run.
CLIENT_GRACE_SECONDS = 1.0


@dataclass(frozen=True)
class DbTimeouts:
    connect: float
    acquire: float
    statement: float
    rank: float  # each of the two tries to read a rank after a commit

    @property
    def client_wait(self) -> float:
        """How long the client waits for a statement's answer."""
        return self.statement + CLIENT_GRACE_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> DbTimeouts:
        return cls(
            connect=settings.db_connect_timeout_seconds,
            acquire=settings.db_acquire_timeout_seconds,
            statement=settings.db_statement_timeout_seconds,
            rank=settings.db_rank_timeout_seconds,
        )

    def server_settings(self) -> dict[str, str]:
        milliseconds = str(max(1, round(self.statement * 1000)))
        return {
            "statement_timeout": milliseconds,
            "idle_in_transaction_session_timeout": milliseconds,
        }


class BoundedPool(asyncpg.Pool):  # type: ignore[misc]  # asyncpg ships no type information
    """asyncpg's pool, whose ``acquire`` waits at most ``acquire_timeout`` unless told
    otherwise, so that no caller (``pool.fetchrow``, ``async with pool.acquire()``) can wait
    for a connection without end."""

    __slots__ = ("acquire_timeout",)

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)


async def create_pool(url: str, settings: Settings) -> asyncpg.Pool:
    timeouts = DbTimeouts.from_settings(settings)
    # asyncpg.create_pool() builds a Pool with these same arguments; it offers no way to pick
    # the class.
    pool = BoundedPool(
        url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        reset=keep_session,
        timeout=timeouts.connect,
        command_timeout=timeouts.client_wait,
        server_settings=timeouts.server_settings(),
    )
    pool.acquire_timeout = timeouts.acquire
    return await pool


async def keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's reset query (advisory unlock, CLOSE ALL, UNLISTEN, RESET
    ALL): one more round trip per pooled call, ~7 % of a worker's CPU on the write path.
    Nothing here leaves session state behind: no LISTEN, no session SET or advisory lock,
    cursors only inside transactions. The pool still rolls back an open transaction."""
