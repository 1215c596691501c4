"""SQL of ``admin_audit``: append an entry (in the caller's transaction) and read pages.

The table refuses UPDATE, DELETE and TRUNCATE (a trigger, sql/005_admin.sql); nothing here
offers either.
"""

from __future__ import annotations

import asyncpg
import orjson

from app.core.audit import OPERATOR_NAME, AuditEntry, AuditPage, AuditRecord, encode_cursor

INSERT_SQL = """
INSERT INTO admin_audit (admin_id, admin_name, action, target, details, reason)
VALUES ($1, $2, $3, $4, $5::jsonb, $6)
RETURNING id, at, admin_id::text, admin_name, action, target, details::text, reason
"""

# Keyset: entries below the cursor's id, newest first (ids grow with every insert).
PAGE_SQL = """
SELECT id, at, admin_id::text, admin_name, action, target, details::text, reason
  FROM admin_audit
 WHERE $2::bigint IS NULL OR id < $2
 ORDER BY id DESC
 LIMIT $1
"""


def _entry(row: asyncpg.Record) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        at=row["at"],
        admin_id=row["admin_id"],
        admin_name=row["admin_name"],
        action=row["action"],
        target=row["target"],
        details=orjson.loads(row["details"]),
        reason=row["reason"],
    )


async def record(conn: asyncpg.Connection | asyncpg.Pool, entry: AuditRecord) -> AuditEntry:
    """Append one entry. Pass the connection of the transaction that makes the change, so the
    entry commits (or rolls back) with it."""
    row = await conn.fetchrow(
        INSERT_SQL,
        entry.admin.user_id if entry.admin else None,
        entry.admin.username if entry.admin else OPERATOR_NAME,
        entry.action,
        entry.target,
        orjson.dumps(entry.details).decode(),
        entry.reason,
    )
    return _entry(row)


async def page(
    conn: asyncpg.Connection | asyncpg.Pool, limit: int, before_id: int | None
) -> AuditPage:
    # One more than asked: whether there is a next page, without a count.
    rows = await conn.fetch(PAGE_SQL, limit + 1, before_id)
    entries = [_entry(r) for r in rows[:limit]]
    more = len(rows) > limit
    return AuditPage(entries, encode_cursor(entries[-1].id) if more and entries else None)


class PgAudit:
    """The AuditLog port on a PostgreSQL pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def page(self, limit: int, before_id: int | None) -> AuditPage:
        return await page(self._pool, limit, before_id)

    async def record(self, entry: AuditRecord) -> AuditEntry:
        """Append an entry on its own (when the change itself is not in PostgreSQL)."""
        return await record(self._pool, entry)
