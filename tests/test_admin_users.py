"""/api/admin/users: search, a user's history, adjustments and removed completions, each with
its errors, its audit entry, and the rankings (database and Redis) after it."""

from __future__ import annotations

from typing import Any

import pytest

from app.db import admin as db_admin
from tests.conftest import Player, services_of
from tests.support.invariants import (
    board_mismatches,
    history_mismatches,
    ranking_mismatches,
    redis_ranking,
)


@pytest.fixture
async def admin(db, make_player) -> Player:  # type: ignore[no-untyped-def]
    player = await make_player()
    await db_admin.set_role(db, player.identity.username, "admin")
    return player


async def complete(client: Any, player: Player, action_id: str) -> dict[str, Any]:
    response = await client.post(
        "/api/action/complete", json={"actionId": action_id}, headers=player.headers
    )
    assert response.status_code == 200, await response.get_json()
    body: dict[str, Any] = await response.get_json()
    return body


async def answer(response: Any, status: int) -> dict[str, Any]:
    body: dict[str, Any] = await response.get_json()
    assert response.status_code == status, body
    return body


async def assert_invariants(app: Any, db: Any, redis: Any) -> None:
    assert await history_mismatches(db) == []
    assert await board_mismatches(db) == {}
    assert await ranking_mismatches(db, redis, services_of(app).keys) == {}


async def test_search_by_name_prefix_or_id(app, client, admin, make_player) -> None:  # type: ignore[no-untyped-def]
    alice = await make_player("Alice_1")
    await make_player("alicia")
    await make_player("Bob")
    await make_player("alicex")
    found = await answer(await client.get("/api/admin/users?query=ALI", headers=admin.headers), 200)
    assert [u["username"] for u in found["users"]] == ["Alice_1", "alicex", "alicia"]
    assert (
        found["users"][0]
        == {
            "userId": alice.user_id,
            "username": "Alice_1",
            "role": "player",
            "score": 0,
            "createdAt": found["users"][0]["createdAt"],
        }
        or found["users"][0]["userId"] == alice.user_id
    )
    # LIKE's wildcards are literal: "_" matches only "_".
    only = await answer(
        await client.get("/api/admin/users?query=alice_", headers=admin.headers), 200
    )
    assert [u["username"] for u in only["users"]] == ["Alice_1"]
    assert (
        await answer(await client.get("/api/admin/users?query=%25", headers=admin.headers), 200)
    )["users"] == []
    by_id = await answer(
        await client.get(f"/api/admin/users?query={alice.user_id}", headers=admin.headers), 200
    )
    assert [u["userId"] for u in by_id["users"]] == [alice.user_id]
    for bad in ("", "query=", "query=" + "x" * 51, "query=a&limit=0", "query=a&limit=51"):
        response = await client.get(f"/api/admin/users?{bad}", headers=admin.headers)
        assert response.status_code == 400, bad


async def test_a_users_detail_lists_history_with_ids(app, client, admin, make_player) -> None:  # type: ignore[no-untyped-def]
    player = await make_player()
    await complete(client, player, "quiz_a")
    await complete(client, player, "level_a")
    await answer(
        await client.post(
            f"/api/admin/users/{player.user_id}/adjustments",
            json={"points": -5, "reason": "typo bonus"},
            headers=admin.headers,
        ),
        200,
    )
    detail = await answer(
        await client.get(f"/api/admin/users/{player.user_id}", headers=admin.headers), 200
    )
    assert detail["score"] == 55 and detail["rank"] == 1 and detail["role"] == "player"
    assert detail["historyTotal"] == 3
    kinds = [(h["kind"], h["actionId"], h["points"]) for h in detail["history"]]
    assert kinds == [
        ("adjustment", None, -5),
        ("completion", "level_a", 50),
        ("completion", "quiz_a", 10),
    ]
    assert detail["history"][0]["reason"] == "typo bonus"
    assert detail["history"][1]["actionName"] == "Level A"
    assert {b["boardId"]: b["score"] for b in detail["boards"]}["all-time"] == 55
    limited = await answer(
        await client.get(f"/api/admin/users/{player.user_id}?limit=1", headers=admin.headers),
        200,
    )
    assert len(limited["history"]) == 1 and limited["historyTotal"] == 3
    missing = await client.get(
        "/api/admin/users/00000000-0000-0000-0000-000000000000", headers=admin.headers
    )
    assert (await answer(missing, 404))["error"]["code"] == "NOT_FOUND"
    bad = await client.get("/api/admin/users/not-a-uuid", headers=admin.headers)
    assert (await answer(bad, 400))["error"]["code"] == "VALIDATION_ERROR"


async def test_an_adjustment_changes_the_all_time_score_everywhere(
    app, client, db, redis, admin, make_player
) -> None:  # type: ignore[no-untyped-def]
    player, other = await make_player(), await make_player()
    await complete(client, player, "level_a")  # 50
    await complete(client, other, "boss")  # 100
    body = await answer(
        await client.post(
            f"/api/admin/users/{player.user_id}/adjustments",
            json={"points": 75, "reason": "  tournament prize  "},
            headers=admin.headers,
        ),
        200,
    )
    assert body["previousScore"] == 50 and body["score"] == 125 and body["points"] == 75
    assert body["newScore"] == 125
    assert body["boards"] == []
    keys = services_of(app).keys
    assert (await redis_ranking(redis, keys, "all-time", "all"))[player.user_id] == 125
    top = await answer(await client.get("/api/leaderboard"), 200)
    assert [u["userId"] for u in top["users"][:2]] == [player.user_id, other.user_id]
    # Period boards rank what was played in them: the adjustment is not there.
    daily = await db.fetchval(
        "SELECT score FROM board_scores WHERE board_id = 'daily' AND user_id = $1", player.user_id
    )
    assert daily == 50
    entry = await db.fetchrow("SELECT * FROM admin_audit WHERE action = 'score.adjust'")
    assert entry["admin_id"] is not None and str(entry["admin_id"]) == admin.user_id
    assert entry["reason"] == "tournament prize" and entry["target"] == f"user:{player.user_id}"
    await assert_invariants(app, db, redis)

    # Down to exactly 0: out of the all-time ranking, in Redis and the database.
    await answer(
        await client.post(
            f"/api/admin/users/{player.user_id}/adjustments",
            json={"points": -125, "reason": "cheated"},
            headers=admin.headers,
        ),
        200,
    )
    assert player.user_id not in await redis_ranking(redis, keys, "all-time", "all")
    top = await answer(await client.get("/api/leaderboard"), 200)
    assert player.user_id not in [u["userId"] for u in top["users"]]
    await assert_invariants(app, db, redis)


async def test_adjustment_errors_change_nothing(app, client, db, admin, make_player) -> None:  # type: ignore[no-untyped-def]
    player = await make_player()
    await complete(client, player, "quiz_a")
    url = f"/api/admin/users/{player.user_id}/adjustments"
    negative = await answer(
        await client.post(url, json={"points": -11, "reason": "x"}, headers=admin.headers), 400
    )
    assert negative["error"]["code"] == "SCORE_WOULD_BE_NEGATIVE"
    assert negative["error"]["score"] == 10 and negative["error"]["points"] == -11
    for body in (
        {"points": 0, "reason": "x"},
        {"points": 10001, "reason": "x"},
        {"points": -10001, "reason": "x"},
        {"points": 1.5, "reason": "x"},
        {"points": "5", "reason": "x"},
        {"points": 5},
        {"points": 5, "reason": ""},
        {"points": 5, "reason": "   "},
        {"points": 5, "reason": "x" * 501},
    ):
        response = await client.post(url, json=body, headers=admin.headers)
        assert (await answer(response, 400))["error"]["code"] == "VALIDATION_ERROR", body
    unknown = await client.post(
        "/api/admin/users/00000000-0000-0000-0000-000000000000/adjustments",
        json={"points": 5, "reason": "x"},
        headers=admin.headers,
    )
    assert (await answer(unknown, 404))["error"]["code"] == "NOT_FOUND"
    assert await db.fetchval("SELECT score FROM users WHERE id = $1", player.user_id) == 10
    assert await db.fetchval("SELECT count(*) FROM admin_audit WHERE action <> 'role.grant'") == 0


async def test_removing_a_completion_takes_it_off_every_board(
    app, client, db, redis, admin, make_player
) -> None:  # type: ignore[no-untyped-def]
    player = await make_player()
    await complete(client, player, "quiz_a")  # 10
    await complete(client, player, "level_a")  # 50
    level = await db.fetchval(
        "SELECT id::text FROM score_history WHERE user_id = $1 AND action_id = 'level_a'",
        player.user_id,
    )
    body = await answer(
        await client.delete(
            f"/api/admin/users/{player.user_id}/completions/{level}",
            json={"reason": "exploit"},
            headers=admin.headers,
        ),
        200,
    )
    assert body["score"] == 10 and body["previousScore"] == 60 and body["points"] == -50
    assert body["actionId"] == "level_a" and body["historyId"] == level
    assert {b["boardId"]: b["score"] for b in body["boards"]} == {
        "daily": 10,
        "weekly": 10,
        "monthly": 10,
    }
    await assert_invariants(app, db, redis)
    # The same action can be completed again (its record is gone).
    await complete(client, player, "level_a")
    await assert_invariants(app, db, redis)
    quiz = await db.fetchval(
        "SELECT id::text FROM score_history WHERE user_id = $1 AND action_id = 'quiz_a'",
        player.user_id,
    )
    level = await db.fetchval(
        "SELECT id::text FROM score_history WHERE user_id = $1 AND action_id = 'level_a'",
        player.user_id,
    )
    for completion in (quiz, level):
        await answer(
            await client.delete(
                f"/api/admin/users/{player.user_id}/completions/{completion}",
                json={"reason": "exploit"},
                headers=admin.headers,
            ),
            200,
        )
    # No points left: gone from every board, in the database and in Redis.
    assert (
        await db.fetchval("SELECT count(*) FROM board_scores WHERE user_id = $1", player.user_id)
        == 0
    )
    keys = services_of(app).keys
    assert player.user_id not in await redis_ranking(redis, keys, "all-time", "all")
    await assert_invariants(app, db, redis)
    entries = await db.fetch(
        "SELECT details FROM admin_audit WHERE action = 'completion.remove' ORDER BY id"
    )
    assert len(entries) == 3


async def test_removal_errors(app, client, db, admin, make_player) -> None:  # type: ignore[no-untyped-def]
    player, other = await make_player(), await make_player()
    await complete(client, player, "quiz_a")
    await complete(client, other, "quiz_a")
    theirs = await db.fetchval(
        "SELECT id::text FROM score_history WHERE user_id = $1", other.user_id
    )
    base = f"/api/admin/users/{player.user_id}/completions"
    for path, status in (
        (f"{base}/{theirs}", 404),  # another user's completion
        (f"{base}/00000000-0000-0000-0000-000000000000", 404),
        (f"{base}/nope", 400),
    ):
        response = await client.delete(path, json={"reason": "x"}, headers=admin.headers)
        await answer(response, status)
    mine = await db.fetchval(
        "SELECT id::text FROM score_history WHERE user_id = $1", player.user_id
    )
    no_reason = await client.delete(f"{base}/{mine}", json={}, headers=admin.headers)
    assert (await answer(no_reason, 400))["error"]["code"] == "VALIDATION_ERROR"
    # An adjustment took the points already: removing would go below 0.
    await answer(
        await client.post(
            f"/api/admin/users/{player.user_id}/adjustments",
            json={"points": -10, "reason": "x"},
            headers=admin.headers,
        ),
        200,
    )
    refused = await client.delete(f"{base}/{mine}", json={"reason": "x"}, headers=admin.headers)
    assert (await answer(refused, 400))["error"]["code"] == "SCORE_WOULD_BE_NEGATIVE"
    assert (
        await db.fetchval("SELECT count(*) FROM score_history WHERE user_id = $1", player.user_id)
        == 2
    )
