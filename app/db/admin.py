"""SQL of roles (``users.role``) and the user search operators use."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from app.core.admin import HistoryEntry, UserDetail, UserSummary
from app.core.audit import AuditRecord
from app.core.tokens import Identity
from app.db import audit

ROLES = ("player", "admin")

ROLE_SQL = "SELECT role FROM users WHERE id = $1"


async def role_of(conn: asyncpg.Connection | asyncpg.Pool, user_id: str) -> str | None:
    """The account's role now; None when the account does not exist."""
    role: str | None = await conn.fetchval(ROLE_SQL, user_id)
    return role


@dataclass(frozen=True)
class RoleChange:
    identity: Identity
    role: str
    changed: bool  # False: the account already had that role


async def set_role(
    conn: asyncpg.Connection, username: str, role: str, by: Identity | None = None
) -> RoleChange | None:
    """Give the named account ``role`` and audit it, in one transaction; None when there is no
    such account."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT id::text, username, role FROM users WHERE lower(username) = lower($1) "
            "FOR UPDATE",
            username,
        )
        if row is None:
            return None
        identity = Identity(row["id"], row["username"])
        if row["role"] == role:
            return RoleChange(identity, role, changed=False)
        await conn.execute("UPDATE users SET role = $2 WHERE id = $1", identity.user_id, role)
        await audit.record(
            conn,
            AuditRecord(
                admin=by,
                action="role.grant" if role == "admin" else "role.revoke",
                target=f"user:{identity.user_id}",
                details={"username": identity.username, "from": row["role"], "to": role},
            ),
        )
    return RoleChange(identity, role, changed=True)


async def list_admins(conn: asyncpg.Connection | asyncpg.Pool) -> list[Identity]:
    rows = await conn.fetch(
        "SELECT id::text, username FROM users WHERE role = 'admin' ORDER BY lower(username)"
    )
    return [Identity(r["id"], r["username"]) for r in rows]


# -- finding users -------------------------------------------------------------------------------

# A name prefix (LIKE's wildcards in it escaped), or an exact id.
SEARCH_SQL = """
SELECT id::text AS user_id, username, role, score, created_at, banned_at
  FROM users
 WHERE lower(username) LIKE lower($1) || '%' ESCAPE '\\' OR id::text = $2
 ORDER BY lower(username)
 LIMIT $3
"""

DETAIL_SQL = """
SELECT id::text AS user_id, username, role, score, created_at, banned_at, ban_reason,
       CASE WHEN score > 0 AND banned_at IS NULL
            THEN 1 + (SELECT count(*) FROM users o
                       WHERE o.score > u.score AND o.banned_at IS NULL) END AS rank,
       (SELECT count(*) FROM score_history h WHERE h.user_id = u.id) AS history_total
  FROM users u WHERE id = $1
"""

HISTORY_SQL = """
SELECT h.id::text, h.kind, h.action_id, a.name AS action_name, h.score_change, h.created_at,
       h.reason
  FROM score_history h LEFT JOIN actions a ON a.id = h.action_id
 WHERE h.user_id = $1
 ORDER BY h.created_at DESC, h.id
 LIMIT $2
"""


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _summary(row: asyncpg.Record) -> UserSummary:
    return UserSummary(
        row["user_id"],
        row["username"],
        row["role"],
        row["score"],
        row["created_at"],
        row["banned_at"],
    )


async def search_users(
    conn: asyncpg.Connection | asyncpg.Pool, query: str, limit: int
) -> list[UserSummary]:
    rows = await conn.fetch(SEARCH_SQL, _like_prefix(query), query.lower(), limit)
    return [_summary(r) for r in rows]


async def user_detail(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: str, history_limit: int
) -> UserDetail | None:
    row = await conn.fetchrow(DETAIL_SQL, user_id)
    if row is None:
        return None
    history = [
        HistoryEntry(
            h["id"],
            h["kind"],
            h["action_id"],
            h["action_name"],
            h["score_change"],
            h["created_at"],
            h["reason"],
        )
        for h in await conn.fetch(HISTORY_SQL, user_id, history_limit)
    ]
    return UserDetail(_summary(row), row["rank"], history, row["history_total"], row["ban_reason"])
