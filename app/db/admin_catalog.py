"""Admin changes to boards and actions, each with its audit entry in the same transaction.

The SQL of each table stays with the module that owns it (app/db/boards.py,
app/db/actions.py); this module is the transaction around a change and its audit entry, so
the log never claims a change that did not happen and never misses one that did.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from app.core import admin_catalog as rules
from app.core.audit import AuditRecord
from app.core.board_reads import BoardNotFound
from app.core.boards import BUILT_IN_IDS, Board
from app.core.catalog import Action
from app.core.errors import InvalidInput, NotFound
from app.core.tokens import Identity
from app.db import actions as db_actions
from app.db import audit as db_audit
from app.db import boards as db_boards


async def _record(
    conn: asyncpg.Connection,
    admin: Identity,
    action: str,
    target: str,
    details: dict[str, Any],
    reason: str | None,
) -> int:
    entry = await db_audit.record(
        conn, AuditRecord(admin=admin, action=action, target=target, details=details, reason=reason)
    )
    return entry.id


async def list_boards(pool: asyncpg.Pool) -> list[Board]:
    return await db_boards.list_boards(pool)


async def create_board(
    pool: asyncpg.Pool, admin: Identity, board: Board, reason: str | None
) -> tuple[Board, int]:
    async with pool.acquire() as conn, conn.transaction():
        await db_boards.insert_board(conn, board)
        audit_id = await _record(
            conn, admin, "board.create", f"board:{board.id}", rules.board_details(board), reason
        )
    return board, audit_id


async def edit_board(
    pool: asyncpg.Pool,
    admin: Identity,
    board_id: str,
    change: rules.BoardChange,
    reason: str | None,
) -> tuple[Board, int]:
    async with pool.acquire() as conn, conn.transaction():
        board = await db_boards.lock_board(conn, board_id)
        if board is None:
            raise BoardNotFound(board_id)
        edited = rules.changed_board(board, change, datetime.now(UTC))
        saved = await db_boards.update_board(conn, edited)
        audit_id = await _record(
            conn,
            admin,
            "board.edit",
            f"board:{board.id}",
            rules.board_changes(board, saved),
            reason,
        )
    return saved, audit_id


async def end_board(
    pool: asyncpg.Pool, admin: Identity, board_id: str, reason: str | None
) -> tuple[Board, int]:
    async with pool.acquire() as conn, conn.transaction():
        board = await db_boards.lock_board(conn, board_id)
        if board is None:
            raise BoardNotFound(board_id)
        if board.id in BUILT_IN_IDS:
            # The rule of `leaderboard boards end`.
            raise InvalidInput(f"{board.id!r} is a built-in board; it cannot end.", field="boardId")
        ended = await db_boards.end_board(conn, board.id)
        if ended is None:
            raise InvalidInput(f"The board {board.id!r} has ended already.", field="boardId")
        assert ended.ended_at is not None
        audit_id = await _record(
            conn,
            admin,
            "board.end",
            f"board:{board.id}",
            {"endedAt": ended.ended_at.astimezone(UTC).isoformat()},
            reason,
        )
    return ended, audit_id


async def list_actions(pool: asyncpg.Pool) -> list[Action]:
    return await db_actions.list_actions(pool)


async def create_action(
    pool: asyncpg.Pool, admin: Identity, action: Action, reason: str | None
) -> int:
    async with pool.acquire() as conn, conn.transaction():
        if not await db_actions.insert_action(conn, action):
            raise InvalidInput(f"There is an action {action.id!r} already.", field="actionId")
        details = rules.action_details(action)
        return await _record(conn, admin, "action.create", f"action:{action.id}", details, reason)


async def edit_action(
    pool: asyncpg.Pool,
    admin: Identity,
    action_id: str,
    given: dict[str, Any],
    reason: str | None,
) -> tuple[Action, int]:
    async with pool.acquire() as conn, conn.transaction():
        action = await db_actions.lock_action(conn, action_id)
        if action is None:
            raise NotFound(f"There is no action {action_id!r}.", actionId=action_id)
        edited = rules.edited_action(action, given)
        await db_actions.update_action(conn, edited)
        changes = rules.action_changes(action, edited)
        verb = "action.deactivate" if action.active and not edited.active else "action.edit"
        audit_id = await _record(conn, admin, verb, f"action:{action.id}", changes, reason)
    return edited, audit_id
