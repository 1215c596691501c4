"""Numbered SQL migrations (``sql/NNN_name.sql``), applied in order, each exactly once.

Two nodes starting together are safe: the run holds an advisory lock and reads the one-row
version table ``FOR UPDATE`` inside one transaction. A database that is ahead of the files
(an older build talking to a newer schema) is refused rather than half-understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from app.core.resources import resource_dir

_FILE_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
# Any constant will do; it only has to be the same on every node.
_LOCK_KEY = 7_401_622_009


class MigrationError(Exception):
    """The schema cannot be brought to the version this build expects."""


@dataclass(frozen=True)
class Migration:
    version: int
    path: Path


def available_migrations(folder: Path | None = None) -> list[Migration]:
    folder = folder or resource_dir("sql")
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"unexpected file in migrations: {path.name}")
        found.append(Migration(int(match.group(1)), path))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migrations must be numbered 001, 002, ... without gaps: {versions}")
    return found


async def current_version(conn: asyncpg.Connection) -> int:
    exists = await conn.fetchval("SELECT to_regclass('schema_migration') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT version FROM schema_migration") or 0)


async def migrate(conn: asyncpg.Connection, folder: Path | None = None) -> list[int]:
    """Apply every pending migration; returns the versions applied."""
    migrations = available_migrations(folder)
    latest = migrations[-1].version if migrations else 0
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_migration (version integer NOT NULL)")
        await conn.execute(
            "INSERT INTO schema_migration (version) SELECT 0 "
            "WHERE NOT EXISTS (SELECT 1 FROM schema_migration)"
        )
        version = int(await conn.fetchval("SELECT version FROM schema_migration FOR UPDATE"))
        if version > latest:
            raise MigrationError(
                f"the database is at schema version {version}, ahead of this build ({latest}); "
                "run a newer build"
            )
        for migration in migrations:
            if migration.version > version:
                await conn.execute(migration.path.read_text())
                applied.append(migration.version)
        if applied:
            await conn.execute("UPDATE schema_migration SET version = $1", latest)
    return applied


async def is_current(conn: asyncpg.Connection) -> bool:
    migrations = available_migrations()
    return await current_version(conn) == (migrations[-1].version if migrations else 0)
