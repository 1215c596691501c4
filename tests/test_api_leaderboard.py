"""GET /api/leaderboard: public, from memory, equal to what the database says."""

from __future__ import annotations

import asyncio

import asyncpg
from redis.asyncio import Redis

from app.redis.keys import Keys
from tests.conftest import services_of


async def complete(client, player, action_id):  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/action/complete", json={"actionId": action_id}, headers=player.headers
    )
    assert response.status_code == 200, await response.get_json()
    return await response.get_json()


async def test_an_empty_board_needs_no_token(client) -> None:
    response = await client.get("/api/leaderboard")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["users"] == []
    assert isinstance(body["version"], int)


async def test_the_board_lists_the_top_ten_with_shared_ranks(client, make_player) -> None:
    players = [await make_player(f"player_{i:02d}") for i in range(12)]
    # Scores 100, 60, 60, 50, 20 ... (ties share a rank, the earlier reacher first).
    await complete(client, players[0], "boss")
    await complete(client, players[2], "level_a")
    await complete(client, players[2], "quiz_a")
    await complete(client, players[1], "level_a")
    await complete(client, players[1], "quiz_b")
    await complete(client, players[3], "level_b")
    for p in players[4:]:
        await complete(client, p, "quiz_a")
        await complete(client, p, "quiz_b")

    body = await (await client.get("/api/leaderboard")).get_json()
    rows = [(u["username"], u["score"], u["rank"]) for u in body["users"]]
    assert rows[:4] == [
        ("player_00", 100, 1),
        ("player_02", 60, 2),
        ("player_01", 60, 2),
        ("player_03", 50, 4),
    ]
    assert len(rows) == 10
    assert rows[4:] == [(f"player_{i:02d}", 20, 5) for i in range(4, 10)]
    assert body["updatedAt"].endswith("Z")
    assert set(body["users"][0]) == {"userId", "username", "score", "rank"}


async def test_a_repeated_read_can_be_answered_with_not_modified(client, make_player) -> None:
    await complete(client, await make_player(), "quiz_a")
    first = await client.get("/api/leaderboard")
    etag = first.headers["ETag"]
    again = await client.get("/api/leaderboard", headers={"If-None-Match": etag})
    assert again.status_code == 304
    await complete(client, await make_player(), "boss")
    changed = await client.get("/api/leaderboard", headers={"If-None-Match": etag})
    assert changed.status_code == 200


async def test_a_cold_node_reads_redis_and_a_cold_redis_is_seeded_from_the_database(
    app, client, make_player, db: asyncpg.Connection, redis: Redis, namespace: str
) -> None:
    await complete(client, await make_player("first"), "boss")
    await complete(client, await make_player("second"), "quiz_a")
    # Redis loses everything and this node forgets its copy, as after a restart of both.
    await redis.delete(*Keys(namespace).leaderboard_keys())
    services_of(app).board.current = None

    body = await (await client.get("/api/leaderboard")).get_json()

    assert [(u["username"], u["score"]) for u in body["users"]] == [("first", 100), ("second", 10)]
    # The read found Redis cold: the reconcile job rebuilds it in the background.
    deadline = asyncio.get_running_loop().time() + 10
    while not (
        await redis.zcard(Keys(namespace).ranking) == 2
        and await redis.exists(Keys(namespace).message)
    ):
        assert asyncio.get_running_loop().time() < deadline, "redis was not rebuilt"
        await asyncio.sleep(0.05)


async def test_the_catalog_is_public(client) -> None:
    body = await (await client.get("/api/actions")).get_json()
    ids = [a["actionId"] for a in body["actions"]]
    assert "quiz_a" in ids and "retired" not in ids
    assert {
        "actionId",
        "name",
        "description",
        "points",
        "repeat",
        "verification",
        "questions",
    } == set(body["actions"][0])


async def test_me_shows_score_rank_and_completions(client, make_player) -> None:
    alice, bob = await make_player(), await make_player()
    await complete(client, bob, "boss")
    await complete(client, alice, "quiz_a")
    await complete(client, alice, "daily_login")
    me = await (await client.get("/api/me", headers=alice.headers)).get_json()
    assert (me["score"], me["rank"]) == (15, 2)
    assert sorted(c["actionId"] for c in me["completions"]) == ["daily_login", "quiz_a"]
    assert (await client.get("/api/me")).status_code == 401


async def test_unknown_paths_and_methods_answer_in_the_error_format(client) -> None:
    missing = await client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert (await missing.get_json())["error"]["code"] == "NOT_FOUND"
    wrong_method = await client.delete("/api/leaderboard")
    assert wrong_method.status_code == 405
    assert (await wrong_method.get_json())["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_the_api_describes_itself(client) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    assert {"/api/leaderboard", "/api/action/complete", "/api/auth/login"} <= set(spec["paths"])
    docs = await client.get("/docs")
    assert docs.status_code == 200
