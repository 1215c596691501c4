"""Sessions that end, over HTTP: logout, logout everywhere, banned and deleted accounts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from tests.conftest import services_of

PASSWORD = "correct horse"


async def signed_up(client: Any, name: str = "alice") -> dict[str, Any]:
    created = await client.post("/api/auth/register", json={"username": name, "password": PASSWORD})
    assert created.status_code == 201
    response = await client.post("/api/auth/login", json={"username": name, "password": PASSWORD})
    assert response.status_code == 200
    tokens: dict[str, Any] = await response.get_json()
    return tokens


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['accessToken']}"}


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    """Wait until ``check()`` holds, at most ``within`` seconds (the guard's promise)."""
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(0.05)


async def me_status(client: Any, headers: dict[str, str]) -> int:
    return int((await client.get("/api/me", headers=headers)).status_code)


async def test_logout_revokes_the_refresh_family(client) -> None:
    tokens = await signed_up(client)
    rotated = await client.post("/api/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    newer = await rotated.get_json()

    out = await client.post("/api/auth/logout", json={"refreshToken": newer["refreshToken"]})
    assert out.status_code == 204
    assert await out.get_data() == b""
    again = await client.post("/api/auth/refresh", json={"refreshToken": newer["refreshToken"]})
    assert again.status_code == 401
    # Logging out twice, or with a token nobody knows, is no error.
    for token in (newer["refreshToken"], "made-up"):
        repeat = await client.post("/api/auth/logout", json={"refreshToken": token})
        assert repeat.status_code == 204


async def test_logout_leaves_other_sessions_alone(client) -> None:
    phone = await signed_up(client)
    laptop_login = await client.post(
        "/api/auth/login", json={"username": "alice", "password": PASSWORD}
    )
    laptop = await laptop_login.get_json()
    await client.post("/api/auth/logout", json={"refreshToken": phone["refreshToken"]})
    refreshed = await client.post(
        "/api/auth/refresh", json={"refreshToken": laptop["refreshToken"]}
    )
    assert refreshed.status_code == 200


async def test_logout_all_ends_every_session_and_refuses_older_access_tokens(client) -> None:
    phone = await signed_up(client)
    laptop = await (
        await client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    ).get_json()

    out = await client.post("/api/auth/logout-all", headers=bearer(phone))
    assert out.status_code == 204
    for tokens in (phone, laptop):
        refused = await client.get("/api/me", headers=bearer(tokens))
        assert refused.status_code == 401
        assert (await refused.get_json())["error"]["code"] == "UNAUTHORIZED"
        again = await client.post(
            "/api/auth/refresh", json={"refreshToken": tokens["refreshToken"]}
        )
        assert again.status_code == 401
    # A new login, even within the same second, works.
    fresh = await (
        await client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    ).get_json()
    assert await me_status(client, bearer(fresh)) == 200


async def test_logout_all_needs_a_valid_token(client) -> None:
    assert (await client.post("/api/auth/logout-all")).status_code == 401
    bad = {"Authorization": "Bearer not.a.token"}
    assert (await client.post("/api/auth/logout-all", headers=bad)).status_code == 401


async def test_a_deleted_user_is_refused_everywhere_within_5_s(
    client, make_player, db: asyncpg.Connection
) -> None:
    player = await make_player()
    assert await me_status(client, player.headers) == 200
    await db.execute("DELETE FROM users WHERE id = $1", player.user_id)

    async def refused() -> bool:
        # The account is checked before the catalog: not INVALID_ACTION.
        complete = await client.post(
            "/api/action/complete", json={"actionId": "no-such-action"}, headers=player.headers
        )
        return bool(complete.status_code == 401)

    await eventually(refused)
    refused_me = await client.get("/api/me", headers=player.headers)
    assert refused_me.status_code == 401
    assert (await refused_me.get_json())["error"]["code"] == "UNAUTHORIZED"


async def test_a_deletion_in_plain_sql_is_heard_at_commit(
    app, client, make_player, db: asyncpg.Connection
) -> None:
    # Every node LISTENs for the moments triggers record; no poll interval to wait out.
    assert services_of(app)._revocations.listening.is_set()
    player = await make_player()
    await db.execute("DELETE FROM users WHERE id = $1", player.user_id)

    async def learned() -> bool:
        return services_of(app).sessions.guard.refusal(player.user_id, 0) is not None

    await eventually(learned, within=0.5)


async def test_a_deleted_user_announced_by_the_admin_is_refused_at_once(
    app, client, make_player, db: asyncpg.Connection
) -> None:
    player = await make_player()
    await db.execute("DELETE FROM users WHERE id = $1", player.user_id)
    await services_of(app).sessions.account_deleted(player.user_id)
    complete = await client.post(
        "/api/action/complete", json={"actionId": "no-such-action"}, headers=player.headers
    )
    assert complete.status_code == 401


async def test_a_banned_user_is_refused_with_account_banned(
    app, client, db: asyncpg.Connection
) -> None:
    tokens = await signed_up(client)
    user_id = tokens["user"]["userId"]
    assert await services_of(app).sessions.ban(user_id, "cheating")
    for response in (
        await client.get("/api/me", headers=bearer(tokens)),
        await client.post(
            "/api/action/complete", json={"actionId": "boss"}, headers=bearer(tokens)
        ),
        await client.post("/api/auth/refresh", json={"refreshToken": tokens["refreshToken"]}),
        await client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD}),
    ):
        assert response.status_code == 403
        assert (await response.get_json())["error"]["code"] == "ACCOUNT_BANNED"
    # A wrong password does not learn of the ban.
    wrong = await client.post("/api/auth/login", json={"username": "alice", "password": "x" * 9})
    assert wrong.status_code == 401
    assert await db.fetchval("SELECT ban_reason FROM users WHERE id = $1", user_id) == "cheating"
    assert await db.fetchval("SELECT count(*) FROM score_history") == 0

    assert await services_of(app).sessions.unban(user_id)
    back = await client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    assert back.status_code == 200
    assert await me_status(client, bearer(await back.get_json())) == 200
    # Tokens from before the ban stay refused.
    assert await me_status(client, bearer(tokens)) == 401


async def test_a_ban_made_in_the_database_is_refused_within_5_s(
    client, db: asyncpg.Connection
) -> None:
    tokens = await signed_up(client)
    await db.execute("UPDATE users SET banned_at = now() WHERE username = 'alice'")

    async def refused() -> bool:
        return await me_status(client, bearer(tokens)) == 403

    await eventually(refused)


async def test_no_token_appears_in_logs_or_error_bodies(client, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = await signed_up(client)
    await client.post("/api/auth/logout-all", headers=bearer(tokens))
    refused = await client.get("/api/me", headers=bearer(tokens))
    body = await refused.get_data(as_text=True)
    out = await client.post("/api/auth/logout", json={"refreshToken": tokens["refreshToken"]})
    assert out.status_code == 204
    for secret in (tokens["accessToken"], tokens["refreshToken"]):
        assert secret not in body
        assert secret not in caplog.text


@pytest.mark.parametrize("token", ["", "x" * 201])
async def test_logout_validates_the_body(client, token: str) -> None:
    response = await client.post("/api/auth/logout", json={"refreshToken": token})
    # An empty token is just unknown (204); an over-long one is refused by the schema.
    assert response.status_code == (204 if token == "" else 400)
