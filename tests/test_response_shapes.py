"""One source per response shape: the JSON on the wire is dumped from the model the OpenAPI
document shows, byte for byte what clients have always received; the board, whose bytes are
built once per change, matches its documented model exactly."""

from __future__ import annotations

import orjson

from app.http.api_board import BoardResponse


async def test_every_json_body_comes_from_its_model(client, make_player) -> None:
    registered = await client.post(
        "/api/auth/register", json={"username": "ada", "password": "analytical engine"}
    )
    assert registered.status_code == 201
    login = await client.post(
        "/api/auth/login", json={"username": "ada", "password": "analytical engine"}
    )
    assert login.status_code == 200
    tokens = await login.get_json()
    refreshed = await client.post(
        "/api/auth/refresh", json={"refreshToken": tokens["refreshToken"]}
    )
    assert refreshed.status_code == 200
    auth = {"Authorization": f"Bearer {tokens['accessToken']}"}
    done = await client.post("/api/action/complete", json={"actionId": "boss"}, headers=auth)
    assert done.status_code == 200
    assert (await client.get("/api/actions")).status_code == 200
    assert (await client.get("/api/me", headers=auth)).status_code == 200
    assert (await client.get("/readyz")).status_code == 200


async def test_bodies_keep_their_exact_bytes(client, make_player) -> None:
    alice = await make_player("alice")

    done = await client.post(
        "/api/action/complete", json={"actionId": "level_a"}, headers=alice.headers
    )
    assert await done.get_data() == (
        b'{"success":true,"pointsEarned":50,"newScore":50,"rank":1,"previousRank":null,'
        b'"top10Changed":true}'
    )
    assert done.headers["Content-Type"] == "application/json"

    again = await client.post(
        "/api/action/complete", json={"actionId": "level_a"}, headers=alice.headers
    )
    error = orjson.loads(await again.get_data())["error"]
    assert list(error) == ["code", "message", "actionId", "completedAt", "pointsEarned"]

    me = orjson.loads(await (await client.get("/api/me", headers=alice.headers)).get_data())
    assert list(me) == ["userId", "username", "score", "rank", "completions", "boards"]
    assert list(me["completions"][0]) == ["actionId", "completedAt", "pointsEarned"]

    catalog = orjson.loads(await (await client.get("/api/actions")).get_data())
    assert list(catalog["actions"][0]) == [
        "actionId",
        "name",
        "description",
        "points",
        "repeat",
        "verification",
        "questions",
    ]

    assert await (await client.get("/healthz")).get_data() == b'{"status":"ok"}'
    ready = await (await client.get("/readyz")).get_data()
    assert ready == b'{"status":"ready","checks":{"postgres":"ok","migrations":"ok","redis":"ok"}}'


async def test_token_responses_keep_their_field_order(client) -> None:
    await client.post("/api/auth/register", json={"username": "bob", "password": "long enough"})
    login = await client.post(
        "/api/auth/login", json={"username": "bob", "password": "long enough"}
    )
    tokens = orjson.loads(await login.get_data())
    assert list(tokens) == ["accessToken", "refreshToken", "tokenType", "expiresIn", "user"]
    assert list(tokens["user"]) == ["userId", "username"]


async def test_the_board_bytes_are_exactly_their_documented_model(client, make_player) -> None:
    for name, action in (("first", "boss"), ("second", "quiz_a")):
        player = await make_player(name)
        await client.post("/api/action/complete", json={"actionId": action}, headers=player.headers)

    body = await (await client.get("/api/leaderboard")).get_data()

    model = BoardResponse.model_validate_json(body)
    assert [u.username for u in model.users] == ["first", "second"]
    assert model.model_dump_json().encode() == body
