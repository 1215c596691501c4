"""Bans over HTTP: a banned player leaves every board (database reads, Redis, the published
top 10), is refused at login, refresh and scoring; an unban restores them with their history."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.db import admin as db_admin
from tests.conftest import Player, services_of
from tests.support.invariants import board_mismatches, history_mismatches, ranking_mismatches
from tests.test_admin_users import answer, complete

PASSWORD = "correct horse"
VISIBLE = "u.banned_at IS NULL"


@pytest.fixture
async def admin(db, make_player) -> Player:  # type: ignore[no-untyped-def]
    player = await make_player()
    await db_admin.set_role(db, player.identity.username, "admin")
    return player


async def sign_up(client: Any, name: str) -> tuple[Player, str]:
    created = await client.post("/api/auth/register", json={"username": name, "password": PASSWORD})
    assert created.status_code == 201
    login = await answer(
        await client.post("/api/auth/login", json={"username": name, "password": PASSWORD}), 200
    )
    me = await answer(
        await client.get("/api/me", headers={"Authorization": f"Bearer {login['accessToken']}"}),
        200,
    )
    from app.core.tokens import Identity

    return Player(Identity(me["userId"], name), login["accessToken"]), login["refreshToken"]


async def on_boards(client: Any, user_id: str) -> dict[str, bool]:
    """Whether the user is on each board's top (as served: memory, Redis, database)."""
    found = {}
    for board in ("all-time", "daily", "weekly", "monthly"):
        body = await answer(await client.get(f"/api/leaderboard?board={board}"), 200)
        found[board] = user_id in [u["userId"] for u in body["users"]]
    return found


async def test_ban_and_unban(app, client, db, redis, admin, make_player) -> None:  # type: ignore[no-untyped-def]
    cheat, refresh = await sign_up(client, "cheater")
    other = await make_player()
    await complete(client, cheat, "boss")  # 100
    await complete(client, cheat, "quiz_a")  # 10
    await complete(client, other, "level_a")  # 50
    assert all((await on_boards(client, cheat.user_id)).values())

    banned = await answer(
        await client.post(
            f"/api/admin/users/{cheat.user_id}/ban",
            json={"reason": "aimbot"},
            headers=admin.headers,
        ),
        200,
    )
    assert banned["banned"] and banned["changed"] and banned["bannedAt"]
    # Off every board: what is served, Redis, the published top 10 and the database reads.
    assert not any((await on_boards(client, cheat.user_id)).values())
    keys = services_of(app).keys
    message = orjson.loads(await redis.get(keys.message))
    assert [u["userId"] for u in message["data"]["users"]] == [other.user_id]
    assert await ranking_mismatches(db, redis, keys, VISIBLE) == {}
    page = await answer(await client.get("/api/leaderboard?board=weekly&limit=50"), 200)
    assert cheat.user_id not in [u["userId"] for u in page["users"]]
    profile = await answer(await client.get(f"/api/users/{other.user_id}"), 200)
    assert {b["boardId"]: b["rank"] for b in profile["boards"]}["all-time"] == 1
    # Refused: scoring, login, refresh.
    refused = await client.post(
        "/api/action/complete", json={"actionId": "quiz_b"}, headers=cheat.headers
    )
    assert (await answer(refused, 403))["error"]["code"] == "ACCOUNT_BANNED"
    login = await client.post("/api/auth/login", json={"username": "cheater", "password": PASSWORD})
    assert (await answer(login, 403))["error"]["code"] == "ACCOUNT_BANNED"
    again = await client.post("/api/auth/refresh", json={"refreshToken": refresh})
    assert again.status_code in (401, 403)
    # The history stays; the detail shows the ban.
    detail = await answer(
        await client.get(f"/api/admin/users/{cheat.user_id}", headers=admin.headers), 200
    )
    assert detail["score"] == 110 and detail["bannedAt"] and detail["banReason"] == "aimbot"
    assert detail["rank"] is None and detail["historyTotal"] == 2
    # Banning twice changes nothing.
    twice = await answer(
        await client.post(
            f"/api/admin/users/{cheat.user_id}/ban", json={"reason": "x"}, headers=admin.headers
        ),
        200,
    )
    assert not twice["changed"] and twice["auditId"] is None
    # A correction while banned is recorded, and shows after the unban.
    quiz = await db.fetchval(
        "SELECT id::text FROM score_history WHERE user_id = $1 AND action_id = 'quiz_a'",
        cheat.user_id,
    )
    await answer(
        await client.delete(
            f"/api/admin/users/{cheat.user_id}/completions/{quiz}",
            json={"reason": "exploit"},
            headers=admin.headers,
        ),
        200,
    )
    assert not any((await on_boards(client, cheat.user_id)).values())
    assert await ranking_mismatches(db, redis, keys, VISIBLE) == {}

    lifted = await answer(
        await client.post(
            f"/api/admin/users/{cheat.user_id}/unban",
            json={"reason": "appeal accepted"},
            headers=admin.headers,
        ),
        200,
    )
    assert not lifted["banned"] and lifted["changed"] and lifted["bannedAt"] is None
    assert all((await on_boards(client, cheat.user_id)).values())
    message = orjson.loads(await redis.get(keys.message))
    assert [(u["userId"], u["score"]) for u in message["data"]["users"]] == [
        (cheat.user_id, 100),
        (other.user_id, 50),
    ]
    assert await ranking_mismatches(db, redis, keys) == {}
    assert await history_mismatches(db) == [] and await board_mismatches(db) == {}
    back = await client.post("/api/auth/login", json={"username": "cheater", "password": PASSWORD})
    assert back.status_code == 200
    actions = [
        r["action"]
        for r in await db.fetch(
            "SELECT action FROM admin_audit WHERE target = $1 ORDER BY id", f"user:{cheat.user_id}"
        )
    ]
    assert actions == ["user.ban", "completion.remove", "user.unban"]


async def test_ban_errors(app, client, admin, make_player) -> None:  # type: ignore[no-untyped-def]
    player = await make_player()
    for verb in ("ban", "unban"):
        unknown = await client.post(
            f"/api/admin/users/00000000-0000-0000-0000-000000000000/{verb}",
            json={"reason": "x"},
            headers=admin.headers,
        )
        assert (await answer(unknown, 404))["error"]["code"] == "NOT_FOUND"
        for body in ({}, {"reason": ""}, {"reason": "x" * 501}, {"reason": 5}):
            bad = await client.post(
                f"/api/admin/users/{player.user_id}/{verb}", json=body, headers=admin.headers
            )
            assert (await answer(bad, 400))["error"]["code"] == "VALIDATION_ERROR", body
    self_ban = await client.post(
        f"/api/admin/users/{admin.user_id}/ban", json={"reason": "x"}, headers=admin.headers
    )
    assert (await answer(self_ban, 400))["error"]["code"] == "VALIDATION_ERROR"
    not_banned = await answer(
        await client.post(
            f"/api/admin/users/{player.user_id}/unban", json={"reason": "x"}, headers=admin.headers
        ),
        200,
    )
    assert not not_banned["changed"]


async def test_a_banned_admin_is_refused(app, client, db, admin, make_player) -> None:  # type: ignore[no-untyped-def]
    other_admin = await make_player()
    await db_admin.set_role(db, other_admin.identity.username, "admin")
    await answer(
        await client.post(
            f"/api/admin/users/{other_admin.user_id}/ban",
            json={"reason": "compromised"},
            headers=admin.headers,
        ),
        200,
    )
    response = await client.get("/api/admin/audit", headers=other_admin.headers)
    assert (await answer(response, 403))["error"]["code"] == "ACCOUNT_BANNED"
