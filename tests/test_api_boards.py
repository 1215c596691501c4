"""Boards over HTTP: listing, a board's top 10, archived periods, pages, around, profiles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from app.core.boards import BUILT_IN_BOARDS, new_board
from app.db import boards as db_boards
from app.db.completions import commit_completion
from app.http.api_board import AroundResponse, NamedBoardResponse, PageResponse
from tests.conftest import services_of


async def complete(client, player, action_id):  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/action/complete", json={"actionId": action_id}, headers=player.headers
    )
    assert response.status_code == 200, await response.get_json()
    return await response.get_json()


async def get(client, path: str, status: int = 200, **kwargs):  # type: ignore[no-untyped-def]
    response = await client.get(path, **kwargs)
    body = await response.get_json()
    assert response.status_code == status, body
    return body


def current(board_id: str) -> str:
    board = next(b for b in BUILT_IN_BOARDS if b.id == board_id)
    period = board.current_period(datetime.now(UTC))
    assert period is not None
    return period.id


async def test_the_boards_counting_now_with_their_periods(app, client, db) -> None:
    now = datetime.now(UTC)
    await db_boards.insert_board(
        db,
        new_board(
            "cup",
            "Cup",
            "tournament",
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=1),
        ),
    )
    await db_boards.insert_board(
        db,
        new_board(
            "later",
            "Later",
            "tournament",
            starts_at=now + timedelta(days=1),
            ends_at=now + timedelta(days=2),
        ),
    )
    await db_boards.refresh_boards(services_of(app).board_catalog, db)
    body = await get(client, "/api/boards")
    boards = {b["boardId"]: b for b in body["boards"]}
    assert list(boards) == ["all-time", "daily", "weekly", "monthly", "cup"]
    assert boards["all-time"] == {
        "boardId": "all-time",
        "name": "All time",
        "window": "all",
        "period": "all",
        "startsAt": None,
        "endsAt": None,
        "actionTag": None,
    }
    weekly = boards["weekly"]
    assert weekly["period"] == current("weekly") and weekly["window"] == "week"
    starts = datetime.fromisoformat(weekly["startsAt"].replace("Z", "+00:00"))
    ends = datetime.fromisoformat(weekly["endsAt"].replace("Z", "+00:00"))
    assert starts.weekday() == 0 and ends - starts == timedelta(days=7) and starts <= now < ends
    assert boards["cup"]["period"] == "cup"


async def test_a_named_board_is_todays_shape_plus_board_and_period(client, make_player) -> None:
    alice, bob = await make_player("alice"), await make_player("bob")
    await complete(client, alice, "quiz_a")
    await complete(client, bob, "boss")
    plain = await client.get("/api/leaderboard")
    assert list(orjson.loads(await plain.get_data())) == ["users", "updatedAt", "version", "epoch"]
    for board in ("weekly", "daily", "monthly", "all-time"):
        body = await get(client, f"/api/leaderboard?board={board}")
        assert list(body) == ["users", "updatedAt", "version", "epoch", "board", "period"]
        assert (body["board"], body["period"]) == (
            board,
            current(board) if board != "all-time" else "all",
        )
        assert [(u["username"], u["score"], u["rank"]) for u in body["users"]] == [
            ("bob", 100, 1),
            ("alice", 10, 2),
        ]


async def test_unknown_boards_and_malformed_periods_are_refused(client) -> None:
    for query in ("board=nope", "board="):
        missing = await get(client, f"/api/leaderboard?{query}", 404)
        assert missing["error"]["code"] == "BOARD_NOT_FOUND"
    for query in ("board=weekly&period=2026-13", "board=weekly&period=2026-11-01", "period=x"):
        bad = await get(client, f"/api/leaderboard?{query}", 400)
        assert (bad["error"]["code"], bad["error"]["field"]) == ("VALIDATION_ERROR", "period")


async def test_a_past_period_is_read_from_the_database(
    client, db: asyncpg.Connection, make_player
) -> None:
    alice = await make_player("alice")
    last_week = datetime.now(UTC) - timedelta(days=7)
    await commit_completion(db, alice.user_id, "level_a", last_week)
    period = next(b for b in BUILT_IN_BOARDS if b.id == "weekly").period_at(last_week)
    assert period is not None
    body = await get(client, f"/api/leaderboard?board=weekly&period={period.id}")
    assert body["period"] == period.id and (body["version"], body["epoch"]) == (0, "0")
    assert [(u["username"], u["score"], u["rank"]) for u in body["users"]] == [("alice", 50, 1)]
    # This week has nothing yet.
    assert (await get(client, "/api/leaderboard?board=weekly"))["users"] == []
    periods = await get(client, "/api/boards/weekly/periods")
    assert periods["board"] == "weekly"
    assert [p["period"] for p in periods["periods"]] == [period.id]
    assert periods["periods"][0]["current"] is False


async def test_pages_walk_the_board_with_cursors_and_shared_ranks(client, make_player) -> None:
    players = [await make_player(f"p{i:02d}") for i in range(7)]
    for i, player in enumerate(players):
        await complete(client, player, "quiz_a" if i % 2 else "level_a")
    seen = []
    page = await get(client, "/api/leaderboard?board=weekly&limit=3")
    assert page["total"] == 7 and page["board"] == "weekly"
    assert list(page) == ["board", "period", "users", "total", "nextCursor"]
    while True:
        seen += [(u["username"], u["score"], u["rank"]) for u in page["users"]]
        if page["nextCursor"] is None:
            break
        page = await get(
            client, f"/api/leaderboard?board=weekly&limit=3&cursor={page['nextCursor']}"
        )
    assert seen == [
        ("p00", 50, 1),
        ("p02", 50, 1),
        ("p04", 50, 1),
        ("p06", 50, 1),
        ("p01", 10, 5),
        ("p03", 10, 5),
        ("p05", 10, 5),
    ]
    # The default page size is 10; one page holds everything here.
    whole = await get(client, "/api/leaderboard?board=weekly&limit=10")
    assert len(whole["users"]) == 7 and whole["nextCursor"] is None


async def test_bad_page_parameters_are_refused(client, make_player) -> None:
    await complete(client, await make_player(), "quiz_a")
    first = await get(client, "/api/leaderboard?board=weekly&limit=1")
    for query, field in (
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=garbage", "cursor"),
        (f"board=daily&cursor={first['nextCursor']}", "cursor"),
        (f"around={uuid.uuid4()}&radius=26", "radius"),
        # Checked even where unused: a radius without around, a cursor without limit.
        ("radius=26", "radius"),
        ("board=weekly&cursor=garbage", "cursor"),
        ("around=not-a-uuid", "userId"),
    ):
        body = await get(client, f"/api/leaderboard?{query}", 400)
        assert body["error"]["field"] == field, query


async def test_around_a_player_and_a_player_with_no_points(client, make_player) -> None:
    players = [await make_player(f"p{i:02d}") for i in range(9)]
    actions = ["boss", "level_a", "level_b", "quiz_a", "quiz_b", "quiz_c"]
    for i, player in enumerate(players):
        for action in actions[: 6 - min(i, 5)]:  # 230, 220, 210, 200, 150, then 100 x 4
            await complete(client, player, action)
    mine = await get(
        client, "/api/leaderboard?board=weekly&around=me&radius=2", headers=players[4].headers
    )
    assert mine["userId"] == players[4].user_id and mine["total"] == 9
    assert [u["username"] for u in mine["users"]] == ["p02", "p03", "p04", "p05", "p06"]
    assert [u["rank"] for u in mine["users"]] == [3, 4, 5, 6, 6]
    theirs = await get(client, f"/api/leaderboard?around={players[0].user_id}&radius=1")
    assert [u["username"] for u in theirs["users"]] == ["p00", "p01"]
    nobody = await make_player("nobody")
    refused = await get(client, f"/api/leaderboard?board=daily&around={nobody.user_id}", 404)
    assert (refused["error"]["code"], refused["error"]["total"]) == ("NOT_RANKED", 9)
    assert (await get(client, "/api/leaderboard?around=me", 401))["error"]["code"] == "UNAUTHORIZED"


async def test_a_public_profile_and_me_show_the_boards(client, make_player) -> None:
    alice, bob = await make_player("alice"), await make_player("bob")
    await complete(client, bob, "boss")
    await complete(client, alice, "quiz_a")
    await complete(client, alice, "level_a")
    profile = await get(client, f"/api/users/{alice.user_id}")
    assert list(profile) == ["userId", "username", "createdAt", "boards", "recent"]
    assert profile["username"] == "alice"
    assert profile["boards"] == [
        {"boardId": "all-time", "period": "all", "score": 60, "rank": 2},
        {"boardId": "daily", "period": current("daily"), "score": 60, "rank": 2},
        {"boardId": "weekly", "period": current("weekly"), "score": 60, "rank": 2},
        {"boardId": "monthly", "period": current("monthly"), "score": 60, "rank": 2},
    ]
    assert [(r["actionId"], r["name"], r["pointsEarned"]) for r in profile["recent"]] == [
        ("level_a", "Level A", 50),
        ("quiz_a", "Quiz A", 10),
    ]
    me = await get(client, "/api/me", headers=alice.headers)
    assert me["boards"] == profile["boards"]
    assert (await get(client, f"/api/users/{uuid.uuid4()}", 404))["error"][
        "code"
    ] == "USER_NOT_FOUND"
    assert (await get(client, "/api/users/12", 400))["error"]["code"] == "VALIDATION_ERROR"


async def test_board_bodies_are_exactly_their_documented_models(client, make_player) -> None:
    alice = await make_player("alice")
    await complete(client, alice, "boss")
    for path, model in (
        ("/api/leaderboard?board=weekly", NamedBoardResponse),
        ("/api/leaderboard?board=all-time", NamedBoardResponse),
        ("/api/leaderboard?board=weekly&limit=5", PageResponse),
        (f"/api/leaderboard?board=daily&around={alice.user_id}", AroundResponse),
    ):
        body = await (await client.get(path)).get_data()
        assert model.model_validate_json(body).model_dump_json().encode() == body, path
    document = await get(client, "/openapi.json")
    shapes = document["paths"]["/api/leaderboard"]["get"]["responses"]["200"]
    assert "LeaderboardResponse" in str(shapes)
    names = {p["name"] for p in document["paths"]["/api/leaderboard"]["get"]["parameters"]}
    assert {"board", "period", "limit", "cursor", "around", "radius"} <= names
