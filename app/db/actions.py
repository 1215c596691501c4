"""SQL of the action catalog (``actions``)."""

from __future__ import annotations

import asyncpg

from app.core.catalog import Action, Catalog

UPSERT_SQL = """
INSERT INTO actions (id, name, points, repeat, description, active, tags)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (id) DO UPDATE
   SET name = EXCLUDED.name, points = EXCLUDED.points, repeat = EXCLUDED.repeat,
       description = EXCLUDED.description, active = EXCLUDED.active, tags = EXCLUDED.tags,
       updated_at = now()
"""


async def list_actions(conn: asyncpg.Connection | asyncpg.Pool) -> list[Action]:
    rows = await conn.fetch(
        "SELECT id, name, points, repeat, description, active, tags FROM actions ORDER BY id"
    )
    return [Action(**(dict(row) | {"tags": tuple(row["tags"])})) for row in rows]


async def upsert_actions(conn: asyncpg.Connection, actions: list[Action]) -> int:
    """Insert or update each action by id; returns how many were written. A change of tags
    applies to completions from then on (what already counted on a board stays)."""
    await conn.executemany(
        UPSERT_SQL,
        [
            (a.id, a.name, a.points, a.repeat, a.description, a.active, list(a.tags))
            for a in actions
        ],
    )
    return len(actions)


async def refresh_catalog(catalog: Catalog, conn: asyncpg.Connection | asyncpg.Pool) -> None:
    """Replace the in-memory copy with the table's current contents."""
    catalog.replace(await list_actions(conn))
