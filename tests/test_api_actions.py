"""POST /api/action/complete through the HTTP API, against real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
from quart.typing import TestClientProtocol as ClientProtocol

from app.core.settings import Settings
from app.core.tokens import issue_access_token
from tests.conftest import Player, services_of

COMPLETE = "/api/action/complete"


async def complete(client: ClientProtocol, player: Player, action_id: str, **body: object):  # type: ignore[no-untyped-def]
    return await client.post(COMPLETE, json={"actionId": action_id, **body}, headers=player.headers)


async def test_completing_an_action_awards_the_catalog_points(client, make_player, db) -> None:
    alice = await make_player("alice")

    response = await complete(client, alice, "level_a")

    assert response.status_code == 200
    assert await response.get_json() == {
        "success": True,
        "pointsEarned": 50,
        "newScore": 50,
        "rank": 1,
        "previousRank": None,
        "top10Changed": True,
    }
    assert await db.fetchval("SELECT score FROM users WHERE id = $1", alice.user_id) == 50
    history = await db.fetch("SELECT action_id, score_change FROM score_history")
    assert [(r["action_id"], r["score_change"]) for r in history] == [("level_a", 50)]


async def test_scores_accumulate_and_ranks_move(client, make_player) -> None:
    alice, bob = await make_player("alice"), await make_player("bob")
    await complete(client, alice, "level_a")
    first = await (await complete(client, bob, "quiz_a")).get_json()
    assert (first["newScore"], first["rank"]) == (10, 2)

    second = await (await complete(client, bob, "boss")).get_json()

    assert second["newScore"] == 110
    assert (second["rank"], second["previousRank"]) == (1, 2)
    assert second["top10Changed"] is True


async def test_a_client_cannot_choose_the_points(client, make_player, db) -> None:
    alice = await make_player()
    response = await complete(client, alice, "quiz_a", points=100, scoreChange=100)
    assert (await response.get_json())["pointsEarned"] == 10
    assert await db.fetchval("SELECT score FROM users") == 10


async def test_repeating_an_action_is_refused_with_the_original_completion(
    client, make_player, db
) -> None:
    alice = await make_player()
    first = await complete(client, alice, "quiz_a")
    assert first.status_code == 200

    again = await complete(client, alice, "quiz_a")

    assert again.status_code == 400
    error = (await again.get_json())["error"]
    assert error["code"] == "ALREADY_COMPLETED"
    assert error["pointsEarned"] == 10
    assert error["completedAt"].endswith("Z")
    assert await db.fetchval("SELECT score FROM users") == 10


async def test_daily_action_is_earned_once_per_server_day(client, make_player, db) -> None:
    alice = await make_player()
    assert (await complete(client, alice, "daily_login")).status_code == 200
    assert (await complete(client, alice, "daily_login")).status_code == 400

    # Yesterday's completion must not block today's: move it back a day.
    await db.execute(
        "UPDATE score_history SET period = to_char(now() AT TIME ZONE 'UTC' - interval '1 day', 'YYYY-MM-DD')"
    )
    response = await complete(client, alice, "daily_login")
    assert response.status_code == 200
    assert (await response.get_json())["newScore"] == 10


@pytest.mark.parametrize("action_id", ["no_such_action", "retired"])
async def test_unknown_or_retired_actions_are_invalid(client, make_player, db, action_id) -> None:
    alice = await make_player()
    response = await complete(client, alice, action_id)
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "INVALID_ACTION"
    assert await db.fetchval("SELECT count(*) FROM score_history") == 0


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"not json", "application/json"),
        (b'["quiz_a"]', "application/json"),
        (b'{"actionId": 5}', "application/json"),
        (b'{"actionId": ""}', "application/json"),
        (b'{"actionId": "' + b"a" * 65 + b'"}', "application/json"),
        (b"{}", "application/json"),
        (b'{"actionId": "quiz_a", "data": "' + b"x" * 5000 + b'"}', "application/json"),
    ],
    ids=[
        "not-json",
        "array",
        "wrong-type",
        "empty-id",
        "long-id",
        "missing-id",
        "big-data",
    ],
)
async def test_malformed_bodies_are_validation_errors(
    client, make_player, db, body, content_type
) -> None:
    alice = await make_player()
    response = await client.post(
        COMPLETE, data=body, headers={**alice.headers, "Content-Type": content_type}
    )
    assert response.status_code == 400
    error = (await response.get_json())["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["message"]
    assert "Traceback" not in json.dumps(error)
    assert await db.fetchval("SELECT count(*) FROM score_history") == 0


async def test_a_body_over_the_limit_is_too_large(client, make_player, db) -> None:
    alice = await make_player()
    body = b'{"actionId": "quiz_a", "pad": "' + b"x" * 20_000 + b'"}'
    response = await client.post(
        COMPLETE, data=body, headers={**alice.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    error = (await response.get_json())["error"]
    assert (error["code"], error["limit"]) == ("VALIDATION_ERROR", 16 * 1024)
    assert await db.fetchval("SELECT count(*) FROM score_history") == 0


async def test_unknown_fields_are_ignored(client, make_player) -> None:
    alice = await make_player()
    response = await complete(client, alice, "quiz_a", data={"answers": [1, 2, 3]}, extra=True)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-jwt", "Bearer a.b.c"],
    ids=["missing", "empty", "basic", "garbage", "malformed"],
)
async def test_requests_without_a_valid_token_are_unauthorized(client, header) -> None:
    headers = {"Authorization": header} if header else {}
    response = await client.post(COMPLETE, json={"actionId": "quiz_a"}, headers=headers)
    assert response.status_code == 401
    assert (await response.get_json())["error"]["code"] == "UNAUTHORIZED"


async def test_an_expired_token_says_so(client, make_player) -> None:
    alice = await make_player()
    expired = issue_access_token(alice.identity, services_of_client(client).settings.jwt_key, -5)
    response = await client.post(
        COMPLETE, json={"actionId": "quiz_a"}, headers={"Authorization": f"Bearer {expired}"}
    )
    assert response.status_code == 401
    assert (await response.get_json())["error"]["code"] == "TOKEN_EXPIRED"


async def test_a_token_for_a_deleted_account_is_refused(client, make_player, db) -> None:
    alice = await make_player()
    await db.execute("DELETE FROM users WHERE id = $1", alice.user_id)
    response = await complete(client, alice, "quiz_a")
    assert response.status_code == 401


async def test_authentication_is_checked_before_the_body(client) -> None:
    response = await client.post(
        COMPLETE, data=b"not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401


async def test_fifty_concurrent_completions_of_one_action_award_once(
    app, make_player, db, settings: Settings
) -> None:
    # The limit is raised so that every request reaches the commit.
    services_of(app).settings = settings.with_overrides(rate_limit_per_minute=1000)
    alice = await make_player()
    client = app.test_client()

    responses = await asyncio.gather(*(complete(client, alice, "boss") for _ in range(50)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 49
    codes = {
        (await r.get_json()).get("error", {}).get("code") for r in responses if r.status_code == 400
    }
    assert codes == {"ALREADY_COMPLETED"}
    assert await db.fetchval("SELECT score FROM users WHERE id = $1", alice.user_id) == 100
    assert await db.fetchval("SELECT count(*) FROM score_history") == 1


async def test_twenty_concurrent_requests_against_a_limit_of_ten(client, make_player, db) -> None:
    alice = await make_player()
    actions = ["quiz_a", "quiz_b", "quiz_c", "level_a", "level_b", "boss"]

    responses = await asyncio.gather(
        *(complete(client, alice, actions[i % len(actions)]) for i in range(20))
    )

    limited = [r for r in responses if r.status_code == 429]
    assert len(responses) - len(limited) == 10
    assert len(limited) == 10
    body = await limited[0].get_json()
    assert body["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert 1 <= body["error"]["retryAfter"] <= 60
    assert limited[0].headers["Retry-After"] == str(body["error"]["retryAfter"])
    # Points only ever came from requests that passed the gate. Which 10 passed is up to the
    # scheduler (not always the first 10 sent), so the total is what they earned.
    earned = [(await r.get_json())["pointsEarned"] for r in responses if r.status_code == 200]
    assert earned and await db.fetchval("SELECT score FROM users") == sum(earned)


async def test_rate_limit_is_per_user(client, make_player) -> None:
    alice, bob = await make_player(), await make_player()
    for _ in range(10):
        await complete(client, alice, "no_such_action")
    assert (await complete(client, alice, "quiz_a")).status_code == 429
    assert (await complete(client, bob, "quiz_a")).status_code == 200


def services_of_client(client: ClientProtocol):  # type: ignore[no-untyped-def]
    return services_of(client.app)


async def test_the_score_always_equals_the_history(
    client, make_player, db: asyncpg.Connection
) -> None:
    players = [await make_player() for _ in range(5)]
    await asyncio.gather(
        *(
            complete(client, p, a)
            for p in players
            for a in ("quiz_a", "quiz_b", "level_a", "quiz_a")
        )
    )
    mismatched = await db.fetchval(
        """
        SELECT count(*) FROM users u
         WHERE u.score <> (SELECT coalesce(sum(score_change), 0) FROM score_history h WHERE h.user_id = u.id)
        """
    )
    assert mismatched == 0
    assert await db.fetchval("SELECT sum(score) FROM users") == 5 * 70
