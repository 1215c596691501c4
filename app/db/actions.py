"""SQL of the action catalog (``actions``)."""

from __future__ import annotations

import asyncpg

from app.core.catalog import Action, Catalog

UPSERT_SQL = """
INSERT INTO actions (id, name, points, repeat, description, active, tags, verification,
                     quiz_questions, quiz_answers)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (id) DO UPDATE
   SET name = EXCLUDED.name, points = EXCLUDED.points, repeat = EXCLUDED.repeat,
       description = EXCLUDED.description, active = EXCLUDED.active, tags = EXCLUDED.tags,
       verification = EXCLUDED.verification, quiz_questions = EXCLUDED.quiz_questions,
       quiz_answers = EXCLUDED.quiz_answers, updated_at = now()
"""

LIST_SQL = """
SELECT id, name, points, repeat, description, active, tags, verification, quiz_questions,
       quiz_answers
  FROM actions
 ORDER BY id
"""


async def list_actions(conn: asyncpg.Connection | asyncpg.Pool) -> list[Action]:
    """Every action, answer keys included (they verify quizzes on this node; the API's
    catalog model leaves them out)."""
    return [_action(row) for row in await conn.fetch(LIST_SQL)]


def _action(row: asyncpg.Record) -> Action:
    return Action(
        id=row["id"],
        name=row["name"],
        points=row["points"],
        repeat=row["repeat"],
        description=row["description"],
        active=row["active"],
        tags=tuple(row["tags"]),
        verification=row["verification"],
        questions=tuple(row["quiz_questions"]),
        answers=tuple(row["quiz_answers"]),
    )


async def upsert_actions(conn: asyncpg.Connection, actions: list[Action]) -> int:
    """Insert or update each action by id; returns how many were written. A change of tags
    applies to completions from then on (what already counted on a board stays)."""
    await conn.executemany(
        UPSERT_SQL,
        [
            (
                a.id,
                a.name,
                a.points,
                a.repeat,
                a.description,
                a.active,
                list(a.tags),
                a.verification,
                list(a.questions),
                list(a.answers),
            )
            for a in actions
        ],
    )
    return len(actions)


async def refresh_catalog(catalog: Catalog, conn: asyncpg.Connection | asyncpg.Pool) -> None:
    """Replace the in-memory copy with the table's current contents."""
    catalog.replace(await list_actions(conn))


# -- admin edits (app/http/api_admin_catalog.py) ------------------------------------------------

INSERT_SQL = """
INSERT INTO actions (id, name, points, repeat, description, active, tags, verification,
                     quiz_questions, quiz_answers)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (id) DO NOTHING
RETURNING id
"""

UPDATE_SQL = """
UPDATE actions
   SET name = $2, points = $3, repeat = $4, description = $5, active = $6, tags = $7,
       verification = $8, quiz_questions = $9, quiz_answers = $10, updated_at = now()
 WHERE id = $1
"""

LOCK_SQL = """
SELECT id, name, points, repeat, description, active, tags, verification, quiz_questions,
       quiz_answers
  FROM actions
 WHERE id = $1
   FOR UPDATE
"""


def _columns(a: Action) -> tuple[object, ...]:
    return (
        a.id,
        a.name,
        a.points,
        a.repeat,
        a.description,
        a.active,
        list(a.tags),
        a.verification,
        list(a.questions),
        list(a.answers),
    )


async def lock_action(conn: asyncpg.Connection, action_id: str) -> Action | None:
    """One action (answer key included), locked until the transaction ends."""
    row = await conn.fetchrow(LOCK_SQL, action_id)
    return None if row is None else _action(row)


async def insert_action(conn: asyncpg.Connection, action: Action) -> bool:
    """Add an action; False (and nothing written) when its id exists already."""
    return await conn.fetchrow(INSERT_SQL, *_columns(action)) is not None


async def update_action(conn: asyncpg.Connection, action: Action) -> None:
    await conn.execute(UPDATE_SQL, *_columns(action))
