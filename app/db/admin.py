"""SQL of roles (``users.role``) and the user search operators use."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

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
