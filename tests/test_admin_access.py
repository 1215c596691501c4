"""Every /api/admin route, as someone who is not an admin (now): a player, no token, an
expired token, a revoked admin. Routes come from the app's url_map, so a new admin route is
covered the day it is added."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import asyncpg
import jwt
import pytest

from app.core.audit import AuditRecord
from app.core.tokens import ALGORITHM, ISSUER
from app.db import admin as db_admin
from app.db import audit as db_audit
from tests.conftest import TEST_SECRET

_PLACEHOLDER = re.compile(r"<(?:[a-z]+:)?([A-Za-z_]+)>")


def admin_routes(quart_app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route under /api/admin, placeholders filled with plausible ids."""
    found = []
    for rule in quart_app.url_map.iter_rules():
        if not rule.rule.startswith("/api/admin"):
            continue
        path = _PLACEHOLDER.sub(lambda m: _sample(m.group(1)), rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, path))
    return found


def _sample(name: str) -> str:
    if name.lower().endswith("id") and "board" not in name.lower() and "action" not in name.lower():
        return str(uuid.uuid4())
    return "sample"


def expired_token(user_id: str, username: str) -> str:
    now = int(time.time())
    claims = {
        "sub": user_id,
        "username": username,
        "iss": ISSUER,
        "typ": "access",
        "iat": now - 3600,
        "exp": now - 60,
    }
    return jwt.encode(claims, TEST_SECRET, algorithm=ALGORITHM)


async def state(db: asyncpg.Connection) -> tuple[object, ...]:
    """What an admin route could change: scores, history, boards, bans, roles, the log."""
    return tuple(
        [
            await db.fetchval(
                f"SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {table} t"
            )
            for table in (
                "users",
                "score_history",
                "board_scores",
                "admin_audit",
                "boards",
                "actions",
            )
        ]
    )


async def call(client: Any, method: str, path: str, headers: dict[str, str]) -> Any:
    body = {"points": 10, "reason": "probe", "name": "x", "actionId": "x"}
    kwargs: dict[str, Any] = {"headers": headers}
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        kwargs["json"] = body
    return await client.open(path, method=method, **kwargs)


async def test_admin_routes_exist(app) -> None:  # type: ignore[no-untyped-def]
    routes = admin_routes(app.app)
    assert ("GET", "/api/admin/audit") in routes
    assert len(routes) >= 1


async def test_no_one_but_a_current_admin_reaches_an_admin_route(
    app, client, db, make_player
) -> None:  # type: ignore[no-untyped-def]
    player = await make_player()
    revoked = await make_player()
    await db_admin.set_role(db, revoked.identity.username, "admin")
    await db_admin.set_role(db, revoked.identity.username, "player")
    callers = {
        "player": (player.headers, 403, "FORBIDDEN"),
        "revoked admin": (revoked.headers, 403, "FORBIDDEN"),
        "no token": ({}, 401, "UNAUTHORIZED"),
        "bad token": ({"Authorization": "Bearer not-a-token"}, 401, "UNAUTHORIZED"),
        "expired token": (
            {"Authorization": f"Bearer {expired_token(player.user_id, player.identity.username)}"},
            401,
            "TOKEN_EXPIRED",
        ),
    }
    before = await state(db)
    routes = admin_routes(app.app)
    for method, path in routes:
        for who, (headers, status, code) in callers.items():
            response = await call(client, method, path, headers)
            body = await response.get_json()
            assert response.status_code == status, (who, method, path, body)
            assert body["error"]["code"] == code, (who, method, path, body)
    assert await state(db) == before


async def test_a_revoked_admin_is_refused_at_the_next_request(app, client, db, make_player) -> None:  # type: ignore[no-untyped-def]
    admin = await make_player()
    await db_admin.set_role(db, admin.identity.username, "admin")
    assert (await client.get("/api/admin/audit", headers=admin.headers)).status_code == 200
    await db_admin.set_role(db, admin.identity.username, "player")
    response = await client.get("/api/admin/audit", headers=admin.headers)
    assert response.status_code == 403


async def test_a_deleted_admin_is_unauthorized(app, client, db, make_player) -> None:  # type: ignore[no-untyped-def]
    admin = await make_player()
    await db_admin.set_role(db, admin.identity.username, "admin")
    await db.execute("DELETE FROM users WHERE id = $1", admin.user_id)
    assert (await client.get("/api/admin/audit", headers=admin.headers)).status_code == 401


async def test_the_audit_log_pages_newest_first(app, client, db, make_player) -> None:  # type: ignore[no-untyped-def]
    admin = await make_player()
    await db_admin.set_role(db, admin.identity.username, "admin")  # entry 1 (operator)
    for n in range(5):
        await db_audit.record(
            db, AuditRecord(admin.identity, "test.note", f"note:{n}", {"n": n}, reason=f"r{n}")
        )
    first = await (await client.get("/api/admin/audit?limit=4", headers=admin.headers)).get_json()
    assert [e["target"] for e in first["entries"]] == ["note:4", "note:3", "note:2", "note:1"]
    assert first["entries"][0]["adminName"] == admin.identity.username
    assert first["entries"][0]["details"] == {"n": 4} and first["entries"][0]["reason"] == "r4"
    cursor = first["nextCursor"]
    second = await (
        await client.get(f"/api/admin/audit?limit=4&cursor={cursor}", headers=admin.headers)
    ).get_json()
    assert [e["action"] for e in second["entries"]] == ["test.note", "role.grant"]
    assert second["entries"][1]["adminId"] is None and second["nextCursor"] is None
    for bad in ("limit=0", "limit=101", "limit=x", "cursor=abc", "cursor=-1"):
        response = await client.get(f"/api/admin/audit?{bad}", headers=admin.headers)
        assert response.status_code == 400, bad
        assert (await response.get_json())["error"]["code"] == "VALIDATION_ERROR"


async def test_the_audit_log_is_append_only(db, make_player) -> None:  # type: ignore[no-untyped-def]
    await db_audit.record(db, AuditRecord(None, "test.note"))
    for sql in (
        "UPDATE admin_audit SET reason = 'x'",
        "DELETE FROM admin_audit",
        "TRUNCATE admin_audit",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await db.execute(sql)
    assert await db.fetchval("SELECT count(*) FROM admin_audit") == 1
