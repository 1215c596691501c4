"""/api/admin/boards and /api/admin/actions: the CLI's rules over HTTP, each change audited and
counting on this node at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.db import admin as db_admin
from tests.conftest import Player, services_of


@pytest.fixture
async def admin(db, make_player) -> Player:  # type: ignore[no-untyped-def]
    player = await make_player()
    await db_admin.set_role(db, player.identity.username, "admin")
    return player


async def answer(response: Any, status: int) -> dict[str, Any]:
    body: dict[str, Any] = await response.get_json()
    assert response.status_code == status, body
    return body


async def audit_entries(db: Any) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT admin_id::text, action, target, details::text, reason FROM admin_audit WHERE action NOT LIKE 'role.%' ORDER BY id"
    )
    return [dict(r) for r in rows]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- boards ---------------------------------------------------------------------------------------


async def test_create_list_edit_and_end_a_tournament(app, client, db, admin) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    starts, ends = now - timedelta(hours=1), now + timedelta(days=2)
    created = await answer(
        await client.post(
            "/api/admin/boards",
            json={
                "boardId": "winter-cup",
                "name": "Winter cup",
                "window": "tournament",
                "startsAt": iso(starts),
                "endsAt": iso(ends),
                "reason": "season event",
            },
            headers=admin.headers,
        ),
        201,
    )
    assert created["boardId"] == "winter-cup"
    assert created["state"] == "open" and created["period"] == "winter-cup"
    assert created["builtIn"] is False and isinstance(created["auditId"], int)
    # Counting on this node at once: the public list shows it without waiting for a refresh.
    public = await answer(await client.get("/api/boards"), 200)
    assert "winter-cup" in [b["boardId"] for b in public["boards"]]

    listed = await answer(await client.get("/api/admin/boards", headers=admin.headers), 200)
    ids = [b["boardId"] for b in listed["boards"]]
    assert ids[:4] == ["all-time", "daily", "weekly", "monthly"] and "winter-cup" in ids

    later = ends + timedelta(days=1)
    edited = await answer(
        await client.patch(
            "/api/admin/boards/winter-cup",
            json={"name": "Winter cup 2026", "endsAt": iso(later)},
            headers=admin.headers,
        ),
        200,
    )
    assert edited["name"] == "Winter cup 2026"
    written = datetime.fromisoformat(edited["endsAt"].replace("Z", "+00:00"))
    assert abs((written - later).total_seconds()) < 0.001
    # It has started: its start can no longer move.
    refused = await answer(
        await client.patch(
            "/api/admin/boards/winter-cup",
            json={"startsAt": iso(now + timedelta(hours=1))},
            headers=admin.headers,
        ),
        400,
    )
    assert refused["error"]["code"] == "VALIDATION_ERROR"
    assert refused["error"]["field"] == "startsAt"

    ended = await answer(
        await client.post(
            "/api/admin/boards/winter-cup/end", json={"reason": "cheating"}, headers=admin.headers
        ),
        200,
    )
    assert ended["state"] == "ended" and ended["endedAt"] is not None
    public = await answer(await client.get("/api/boards"), 200)
    assert "winter-cup" not in [b["boardId"] for b in public["boards"]]
    again = await answer(
        await client.post("/api/admin/boards/winter-cup/end", headers=admin.headers), 400
    )
    assert "ended already" in again["error"]["message"]

    entries = await audit_entries(db)
    assert [e["action"] for e in entries] == ["board.create", "board.edit", "board.end"]
    assert {e["target"] for e in entries} == {"board:winter-cup"}
    assert {e["admin_id"] for e in entries} == {admin.user_id}
    assert [e["reason"] for e in entries] == ["season event", None, "cheating"]
    assert '"name"' in entries[1]["details"] and "Winter cup 2026" in entries[1]["details"]


async def test_board_rules_are_the_cli_rules(app, client, db, admin) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    cases = [
        ({"boardId": "Bad Id", "name": "x", "window": "day"}, "boardId"),
        ({"boardId": "ok", "name": "  ", "window": "day"}, "name"),
        ({"boardId": "ok", "name": "x", "window": "tournament"}, "startsAt"),
        (
            {
                "boardId": "ok",
                "name": "x",
                "window": "tournament",
                "startsAt": iso(now),
                "endsAt": iso(now - timedelta(hours=1)),
            },
            "endsAt",
        ),
        ({"boardId": "ok", "name": "x", "window": "day", "startsAt": iso(now)}, "startsAt"),
        ({"boardId": "ok", "name": "x", "window": "all"}, "actionTag"),
        ({"boardId": "ok", "name": "x", "window": "day", "actionTag": "Bad Tag"}, "actionTag"),
        ({"boardId": "daily", "name": "x", "window": "day"}, "boardId"),  # in use
    ]
    for body, field in cases:
        refused = await answer(
            await client.post("/api/admin/boards", json=body, headers=admin.headers), 400
        )
        assert refused["error"]["code"] == "VALIDATION_ERROR", body
        assert refused["error"].get("field") == field, (body, refused)
    bad_window = await answer(
        await client.post(
            "/api/admin/boards",
            json={"boardId": "ok", "name": "x", "window": "year"},
            headers=admin.headers,
        ),
        400,
    )
    assert bad_window["error"]["code"] == "VALIDATION_ERROR"
    # A built-in board cannot end; an unknown one is not found.
    builtin = await answer(
        await client.post("/api/admin/boards/daily/end", headers=admin.headers), 400
    )
    assert "built-in" in builtin["error"]["message"]
    missing = await answer(
        await client.post("/api/admin/boards/nope/end", headers=admin.headers), 404
    )
    assert missing["error"]["code"] == "BOARD_NOT_FOUND"
    missing = await answer(
        await client.patch("/api/admin/boards/nope", json={"name": "x"}, headers=admin.headers),
        404,
    )
    assert missing["error"]["code"] == "BOARD_NOT_FOUND"
    nothing = await answer(
        await client.patch("/api/admin/boards/daily", json={}, headers=admin.headers), 400
    )
    assert nothing["error"]["code"] == "VALIDATION_ERROR"
    # Only a tournament has a range.
    ranged = await answer(
        await client.patch(
            "/api/admin/boards/daily", json={"endsAt": iso(now)}, headers=admin.headers
        ),
        400,
    )
    assert ranged["error"]["field"] == "startsAt"
    assert await audit_entries(db) == []


async def test_a_tournament_not_started_can_move(app, client, db, admin) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    await answer(
        await client.post(
            "/api/admin/boards",
            json={
                "boardId": "spring",
                "name": "Spring",
                "window": "tournament",
                "startsAt": iso(now + timedelta(days=1)),
                "endsAt": iso(now + timedelta(days=2)),
            },
            headers=admin.headers,
        ),
        201,
    )
    moved = await answer(
        await client.patch(
            "/api/admin/boards/spring",
            json={"startsAt": iso(now + timedelta(hours=2))},
            headers=admin.headers,
        ),
        200,
    )
    assert moved["state"] == "closed"
    into_past = await answer(
        await client.patch(
            "/api/admin/boards/spring",
            json={"startsAt": iso(now - timedelta(hours=2))},
            headers=admin.headers,
        ),
        400,
    )
    assert "past" in into_past["error"]["message"]
    board = services_of(app).board_catalog.get("spring")
    assert board is not None and board.starts_at is not None
    assert abs((board.starts_at - (now + timedelta(hours=2))).total_seconds()) < 1


# -- actions --------------------------------------------------------------------------------------


async def test_create_edit_and_deactivate_an_action(app, client, db, admin, make_player) -> None:  # type: ignore[no-untyped-def]
    created = await answer(
        await client.post(
            "/api/admin/actions",
            json={
                "actionId": "quiz_042",
                "name": "Capitals",
                "points": 20,
                "tags": ["quiz", "geo"],
                "verification": "quiz",
                "questions": ["Capital of France?"],
                "answers": ["Paris"],
                "reason": "new quiz",
            },
            headers=admin.headers,
        ),
        201,
    )
    assert created["actionId"] == "quiz_042" and created["answerCount"] == 1
    assert "answers" not in created
    # In this node's catalog at once.
    assert services_of(app).catalog.get("quiz_042") is not None
    listed = await answer(await client.get("/api/admin/actions", headers=admin.headers), 200)
    mine = next(a for a in listed["actions"] if a["actionId"] == "quiz_042")
    assert mine["questions"] == ["Capital of France?"] and "answers" not in mine
    assert any(a["actionId"] == "retired" and a["active"] is False for a in listed["actions"])

    edited = await answer(
        await client.patch(
            "/api/admin/actions/quiz_042",
            json={"points": 30, "name": "Capitals of Europe", "answers": ["paris"]},
            headers=admin.headers,
        ),
        200,
    )
    assert edited["points"] == 30 and edited["name"] == "Capitals of Europe"
    catalog_action = services_of(app).catalog.get("quiz_042")
    assert catalog_action is not None and catalog_action.points == 30
    assert catalog_action.answers == ("paris",)

    # Leaving quiz drops the questions and answers.
    claim = await answer(
        await client.patch(
            "/api/admin/actions/quiz_042", json={"verification": "claim"}, headers=admin.headers
        ),
        200,
    )
    assert claim["questions"] == [] and claim["answerCount"] == 0
    player = await make_player()
    done = await client.post(
        "/api/action/complete", json={"actionId": "quiz_042"}, headers=player.headers
    )
    assert done.status_code == 200 and (await done.get_json())["pointsEarned"] == 30

    off = await answer(
        await client.patch(
            "/api/admin/actions/quiz_042",
            json={"active": False, "reason": "retired"},
            headers=admin.headers,
        ),
        200,
    )
    assert off["active"] is False
    assert services_of(app).catalog.get("quiz_042") is None
    other = await make_player()
    refused = await client.post(
        "/api/action/complete", json={"actionId": "quiz_042"}, headers=other.headers
    )
    assert (await refused.get_json())["error"]["code"] == "INVALID_ACTION"

    entries = await audit_entries(db)
    assert [e["action"] for e in entries] == [
        "action.create",
        "action.edit",
        "action.edit",
        "action.deactivate",
    ]
    assert {e["target"] for e in entries} == {"action:quiz_042"}
    # The answer key is never in the log: a count when created, "changed" when edited.
    for entry in entries:
        assert "Paris" not in entry["details"] and "paris" not in entry["details"]
    assert '"answers": "changed"' in entries[1]["details"]
    assert entries[3]["reason"] == "retired"


async def test_action_rules_are_the_catalog_file_rules(app, client, db, admin) -> None:  # type: ignore[no-untyped-def]
    cases = [
        ({"actionId": "Bad Id", "name": "x", "points": 5}, "actionId"),
        ({"actionId": "ok", "name": "", "points": 5}, "name"),
        ({"actionId": "ok", "name": "x", "points": 0}, "points"),
        ({"actionId": "ok", "name": "x", "points": 101}, "points"),
        ({"actionId": "ok", "name": "x", "points": 5, "tags": ["Bad tag"]}, "tags"),
        ({"actionId": "ok", "name": "x", "points": 5, "verification": "quiz"}, "questions"),
        (
            {
                "actionId": "ok",
                "name": "x",
                "points": 5,
                "verification": "quiz",
                "questions": ["a?", "b?"],
                "answers": ["secret-answer"],
            },
            "answers",
        ),
        ({"actionId": "ok", "name": "x", "points": 5, "questions": ["a?"]}, "questions"),
        ({"actionId": "quiz_a", "name": "x", "points": 5}, "actionId"),  # in use
    ]
    for body, field in cases:
        refused = await answer(
            await client.post("/api/admin/actions", json=body, headers=admin.headers), 400
        )
        assert refused["error"]["code"] == "VALIDATION_ERROR", body
        assert refused["error"].get("field") == field, (body, refused)
        assert "secret-answer" not in refused["error"]["message"]
    wrong_type = await answer(
        await client.post(
            "/api/admin/actions",
            json={"actionId": "ok", "name": "x", "points": "5"},
            headers=admin.headers,
        ),
        400,
    )
    assert wrong_type["error"]["code"] == "VALIDATION_ERROR"
    missing = await answer(
        await client.patch("/api/admin/actions/nope", json={"points": 5}, headers=admin.headers),
        404,
    )
    assert missing["error"]["code"] == "NOT_FOUND"
    nothing = await answer(
        await client.patch("/api/admin/actions/quiz_a", json={}, headers=admin.headers), 400
    )
    assert nothing["error"]["code"] == "VALIDATION_ERROR"
    too_many = await answer(
        await client.patch(
            "/api/admin/actions/quiz_a", json={"points": 1000}, headers=admin.headers
        ),
        400,
    )
    assert too_many["error"]["field"] == "points"
    assert await audit_entries(db) == []


async def test_nul_and_end_bodies(app, client, db, admin) -> None:  # type: ignore[no-untyped-def]
    """Text PostgreSQL cannot store is a 400, not a 500; `end` takes no body, `{}` or a reason."""
    for path, body in (
        ("/api/admin/boards", {"boardId": "nul", "name": "a\x00b", "window": "day"}),
        ("/api/admin/actions", {"actionId": "nul", "name": "a\x00b", "points": 5}),
        ("/api/admin/actions", {"actionId": "nul", "name": "ab", "points": 5, "tags": ["\x00"]}),
    ):
        refused = await answer(await client.post(path, json=body, headers=admin.headers), 400)
        assert refused["error"]["code"] == "VALIDATION_ERROR"
    for index, body in enumerate((None, {}, {"reason": "over"})):
        board_id = f"cup-{index}"
        await answer(
            await client.post(
                "/api/admin/boards",
                json={"boardId": board_id, "name": "Cup", "window": "week", "actionTag": "quiz"},
                headers=admin.headers,
            ),
            201,
        )
        sent = {} if body is None else {"json": body}
        ended = await answer(
            await client.post(f"/api/admin/boards/{board_id}/end", headers=admin.headers, **sent),
            200,
        )
        assert ended["state"] == "ended"
    await answer(
        await client.post(
            "/api/admin/boards",
            json={"boardId": "still-open", "name": "Open", "window": "day", "actionTag": "quiz"},
            headers=admin.headers,
        ),
        201,
    )
    for bad in ({"reason": 5}, {"why": "x"}, ["x"], {"reason": "a\x00"}):
        refused = await answer(
            await client.post("/api/admin/boards/still-open/end", json=bad, headers=admin.headers),
            400,
        )
        assert "ended" not in refused["error"]["message"]
    listed = await answer(await client.get("/api/admin/boards", headers=admin.headers), 200)
    assert next(b for b in listed["boards"] if b["boardId"] == "still-open")["state"] == "open"
    reasons = [e["reason"] for e in await audit_entries(db) if e["action"] == "board.end"]
    assert reasons == [None, None, "over"]
