"""Migrations: in order, once, safe when two nodes start together, refused when ahead."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest

from app.db.migrations import (
    MigrationError,
    available_migrations,
    current_version,
    is_current,
    migrate,
)


@pytest.fixture
async def empty_database(backing_servers, namespace):  # type: ignore[no-untyped-def]
    from tests.conftest import database_url_for

    admin = await asyncpg.connect(backing_servers.database_url)
    name = f"lbt_empty_{namespace}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    yield database_url_for(backing_servers.database_url, name)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def test_two_nodes_migrating_at_once_apply_each_file_once(empty_database: str) -> None:
    conns = [await asyncpg.connect(empty_database) for _ in range(2)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        latest = available_migrations()[-1].version
        assert sorted(results, key=len) == [[], list(range(1, latest + 1))]
        assert await current_version(conns[0]) == latest
        assert await is_current(conns[0])
        assert await migrate(conns[0]) == []
    finally:
        for c in conns:
            await c.close()


async def test_a_database_ahead_of_the_files_is_refused(db: asyncpg.Connection) -> None:
    await db.execute("UPDATE schema_migration SET version = version + 1")
    with pytest.raises(MigrationError, match="ahead"):
        await migrate(db)


async def test_a_new_file_is_applied_on_the_next_run(
    db: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = tmp_path / "sql"
    shutil.copytree(available_migrations()[0].path.parent, folder)
    next_version = len(available_migrations()) + 1
    (folder / f"{next_version:03d}_add_motto.sql").write_text(
        "ALTER TABLE users ADD COLUMN motto text;"
    )
    assert await migrate(db, folder) == [next_version]
    assert (
        await db.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'motto'"
        )
        == 1
    )


def test_files_must_be_numbered_without_gaps(tmp_path: Path) -> None:
    (tmp_path / "001_a.sql").write_text("")
    (tmp_path / "003_c.sql").write_text("")
    with pytest.raises(MigrationError, match="gaps"):
        available_migrations(tmp_path)


async def test_schema_constraints_hold(db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("INSERT INTO actions (id, name, points) VALUES ('too_many', 'x', 101)")
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("INSERT INTO actions (id, name, points) VALUES ('none', 'x', 0)")
    with pytest.raises(asyncpg.StringDataRightTruncationError):
        await db.execute("INSERT INTO users (username) VALUES ($1)", "u" * 51)
    await db.execute("INSERT INTO users (username) VALUES ('Alice')")
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute("INSERT INTO users (username) VALUES ('alice')")
