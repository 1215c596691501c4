"""One operator command against PostgreSQL: connect with DATABASE_URL, run, close.

The commands that manage data (boards, issuers, API keys, admins) are each a *job*: a
coroutine function taking one connection and returning the process's exit status. A refusal
of the core's rules (InvalidInput) is a one-line message and EXIT_REFUSED, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable

import asyncpg

from app.core.errors import InvalidInput
from app.core.settings import ConfigError, Settings

EXIT_NOT_FOUND, EXIT_REFUSED = 1, 2

Job = Callable[[asyncpg.Connection], Awaitable[int]]


def run_job(args: argparse.Namespace, job: Job) -> int:
    settings = Settings.from_env(args.env)
    if not settings.database_url:
        raise ConfigError("DATABASE_URL is not set")
    return asyncio.run(_with_connection(settings.database_url, job))


async def _with_connection(url: str, job: Job) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await job(conn)
    except InvalidInput as error:
        print(f"leaderboard: {error.message}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        await conn.close()
