"""POST /api/server/awards through the real HTTP API, with keys made by the real CLI:
idempotency under concurrency, refusals, the per-key limit, and no key in logs or bodies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest

from app.core.awards import key_digest, new_key_secret
from app.core.settings import Settings
from app.db.api_keys import create_key
from app.http.app import create_app
from app.obs.logging_setup import redact
from tests.support.cli import run_cli


def apikey(secret: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey {secret}"}


@pytest.fixture
async def key(app: Any, service_env: dict[str, str]) -> str:
    made = await asyncio.to_thread(
        run_cli, "apikeys", "create", "arena", "--scope", "award", env=service_env
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("lbk_") and len(secret) > 40
    return secret


def award(user_id: str, action: str = "boss", idem: str = "k-1", **extra: Any) -> dict[str, Any]:
    return {"userId": user_id, "actionId": action, "idempotencyKey": idem, **extra}


async def test_an_award_answers_like_a_completion_and_counts_once(
    client: Any, key: str, make_player: Any, db: asyncpg.Connection
) -> None:
    ada = await make_player("ada")
    response = await client.post(
        "/api/server/awards", json=award(ada.user_id, data={"match": 1}), headers=apikey(key)
    )
    assert response.status_code == 200
    body = await response.get_json()
    assert body == {
        "success": True,
        "pointsEarned": 100,
        "newScore": 100,
        "rank": 1,
        "previousRank": None,
        "top10Changed": True,
    }
    # The completion path answers with the same shape.
    done = await client.post(
        "/api/action/complete", json={"actionId": "quiz_a"}, headers=ada.headers
    )
    assert list(await done.get_json()) == list(body)
    # The leaderboard shows it.
    board = await (await client.get("/api/leaderboard")).get_json()
    assert [(u["username"], u["score"]) for u in board["users"]] == [("ada", 110)]
    # The same idempotency key again: the original answer, nothing more awarded.
    again = await client.post(
        "/api/server/awards", json=award(ada.user_id, data={"match": 1}), headers=apikey(key)
    )
    assert again.status_code == 200
    assert await again.get_data() == await response.get_data()
    assert await db.fetchval("SELECT score FROM users WHERE id = $1", ada.user_id) == 110


async def test_100_concurrent_repeats_award_once_and_answer_alike(
    client: Any, key: str, make_player: Any, db: asyncpg.Connection
) -> None:
    ada = await make_player("ada")
    responses = await asyncio.gather(
        *(
            client.post(
                "/api/server/awards", json=award(ada.user_id, idem="once"), headers=apikey(key)
            )
            for _ in range(100)
        )
    )
    assert [r.status_code for r in responses] == [200] * 100
    bodies = {await r.get_data() for r in responses}
    assert len(bodies) == 1, bodies
    assert orjson.loads(bodies.pop())["newScore"] == 100
    rows = await db.fetchval(
        "SELECT count(*) FROM score_history WHERE user_id = $1 AND action_id = 'boss'",
        ada.user_id,
    )
    assert rows == 1
    assert await db.fetchval("SELECT score FROM users WHERE id = $1", ada.user_id) == 100


async def test_the_same_key_with_another_body_is_refused(
    client: Any, key: str, make_player: Any, db: asyncpg.Connection
) -> None:
    ada, bob = await make_player("ada"), await make_player("bob")
    first = await client.post("/api/server/awards", json=award(ada.user_id), headers=apikey(key))
    assert first.status_code == 200
    for other in (
        award(bob.user_id),
        award(ada.user_id, action="level_a"),
        award(ada.user_id, data={"x": 1}),
    ):
        reused = await client.post("/api/server/awards", json=other, headers=apikey(key))
        assert reused.status_code == 409
        assert (await reused.get_json())["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await db.fetchval("SELECT count(*) FROM score_history") == 1


async def test_refusals_name_what_is_wrong(
    client: Any, key: str, make_player: Any, db: asyncpg.Connection
) -> None:
    ada = await make_player("ada")
    cases = [
        (award("00000000-0000-4000-8000-000000000000"), 404, "USER_NOT_FOUND"),
        (award("not-a-uuid"), 400, "VALIDATION_ERROR"),
        (award(ada.user_id, action="no-such"), 400, "INVALID_ACTION"),
        (award(ada.user_id, action="retired"), 400, "INVALID_ACTION"),
        ({"userId": ada.user_id, "actionId": "boss"}, 400, "VALIDATION_ERROR"),
        (award(ada.user_id, idem=""), 400, "VALIDATION_ERROR"),
        (award(ada.user_id, data={"x": "y" * 5000}), 400, "VALIDATION_ERROR"),
    ]
    for body, status, code in cases:
        response = await client.post("/api/server/awards", json=body, headers=apikey(key))
        assert (response.status_code, (await response.get_json())["error"]["code"]) == (
            status,
            code,
        ), body
    # Already completed (by the player): the completion's refusal, with the original.
    await client.post("/api/action/complete", json={"actionId": "level_a"}, headers=ada.headers)
    repeat = await client.post(
        "/api/server/awards",
        json=award(ada.user_id, action="level_a", idem="z"),
        headers=apikey(key),
    )
    assert repeat.status_code == 400
    error = (await repeat.get_json())["error"]
    assert (error["code"], error["pointsEarned"]) == ("ALREADY_COMPLETED", 50)
    # A refusal stores nothing: the key is free for the same request once it can succeed.
    assert await db.fetchval("SELECT count(*) FROM server_awards") == 0
    # A banned user gets nothing.
    await db.execute("UPDATE users SET banned_at = now() WHERE id = $1", ada.user_id)
    banned = await client.post(
        "/api/server/awards", json=award(ada.user_id, idem="b"), headers=apikey(key)
    )
    assert banned.status_code == 403
    assert (await banned.get_json())["error"]["code"] == "ACCOUNT_BANNED"


async def test_missing_bad_and_revoked_keys_are_401(
    client: Any, key: str, make_player: Any, service_env: dict[str, str]
) -> None:
    ada = await make_player("ada")
    body = award(ada.user_id)
    for headers in (
        {},
        {"Authorization": "ApiKey"},
        {"Authorization": "ApiKey lbk_made-up"},
        {"Authorization": f"Bearer {key}"},
        ada.headers,  # a player's token is no API key
    ):
        response = await client.post("/api/server/awards", json=body, headers=headers)
        assert response.status_code == 401
        assert (await response.get_json())["error"]["code"] == "UNAUTHORIZED"
        assert response.headers["WWW-Authenticate"] == "ApiKey"
    revoked = await asyncio.to_thread(run_cli, "apikeys", "revoke", "arena", env=service_env)
    assert revoked.returncode == 0, revoked.stderr
    refused = await client.post("/api/server/awards", json=body, headers=apikey(key))
    assert refused.status_code == 401
    # A bad key is 401 even when the body is bad too.
    bad = await client.post("/api/server/awards", json={}, headers=apikey(key))
    assert bad.status_code == 401
    listed = await asyncio.to_thread(run_cli, "apikeys", "list", env=service_env)
    assert "arena" in listed.stdout and "revoked" in listed.stdout
    assert key not in listed.stdout
    missing = await asyncio.to_thread(run_cli, "apikeys", "revoke", "nope", env=service_env)
    assert missing.returncode == 1


async def test_a_key_without_the_award_scope_is_403(
    client: Any, make_player: Any, db: asyncpg.Connection
) -> None:
    ada = await make_player("ada")
    secret = new_key_secret()
    await create_key(db, "reader", key_digest(secret), ["read"])
    response = await client.post(
        "/api/server/awards", json=award(ada.user_id), headers=apikey(secret)
    )
    assert response.status_code == 403
    assert (await response.get_json())["error"]["code"] == "FORBIDDEN"


@pytest.fixture
async def limited_client(settings: Settings, catalog_loaded: Any, redis: Any) -> AsyncIterator[Any]:
    app = create_app(settings.with_overrides(api_key_awards_per_minute=3))
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def test_each_key_has_its_own_rate_limit(
    limited_client: Any, make_player: Any, db: asyncpg.Connection
) -> None:
    players = [await make_player() for _ in range(4)]
    secrets_ = [new_key_secret(), new_key_secret()]
    for name, secret in zip(("one", "two"), secrets_, strict=True):
        await create_key(db, name, key_digest(secret), ["award"])

    async def send(secret: str, player: Any) -> Any:
        return await limited_client.post(
            "/api/server/awards",
            json=award(player.user_id, action="quiz_a", idem=player.user_id),
            headers=apikey(secret),
        )

    statuses = [(await send(secrets_[0], p)).status_code for p in players]
    assert statuses == [200, 200, 200, 429]
    limited = await send(secrets_[0], players[0])
    assert limited.status_code == 429
    assert (await limited.get_json())["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert int(limited.headers["Retry-After"]) >= 1
    # Another key is not held back by the first.
    assert (await send(secrets_[1], players[3])).status_code == 200


async def test_no_key_appears_in_logs_or_error_bodies(
    client: Any, key: str, make_player: Any, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    ada = await make_player("ada")
    bodies = []
    for body in (award(ada.user_id), award(ada.user_id, action="level_a"), {}):
        response = await client.post("/api/server/awards", json=body, headers=apikey(key))
        bodies.append(await response.get_data(as_text=True))
    wrong = key[:-2] + "xx"
    refused = await client.post(
        "/api/server/awards", json=award(ada.user_id), headers=apikey(wrong)
    )
    bodies.append(await refused.get_data(as_text=True))
    for text in (*bodies, caplog.text):
        assert key not in text
        assert wrong not in text
        assert key[4:] not in text


def test_api_keys_are_masked_in_any_log_line() -> None:
    secret = new_key_secret()
    for line in (f"Authorization: ApiKey {secret}", f"got {secret} from a client"):
        masked = redact(line)
        assert secret not in masked and secret[4:] not in masked
        assert "REDACTED" in masked


async def test_the_cli_makes_award_keys_by_default_and_refuses_a_taken_name(
    app: Any, service_env: dict[str, str]
) -> None:
    made = await asyncio.to_thread(run_cli, "apikeys", "create", "plain", env=service_env)
    assert made.returncode == 0, made.stderr
    again = await asyncio.to_thread(run_cli, "apikeys", "create", "plain", env=service_env)
    assert again.returncode == 2 and again.stdout == ""
    bad = await asyncio.to_thread(run_cli, "apikeys", "create", "no spaces", env=service_env)
    assert bad.returncode == 2
    listed = await asyncio.to_thread(run_cli, "apikeys", "list", "--json", env=service_env)
    entries = orjson.loads(listed.stdout)
    assert [(e["name"], e["scopes"], e["revokedAt"]) for e in entries] == [
        ("plain", ["award"], None)
    ]
    assert made.stdout.strip() not in listed.stdout
