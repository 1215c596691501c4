"""Accounts over HTTP: register, log in, refresh with rotation."""

from __future__ import annotations

import asyncio

import asyncpg
import jwt

from tests.conftest import TEST_SECRET, services_of


async def register(client, username="alice", password="correct horse"):  # type: ignore[no-untyped-def]
    return await client.post(
        "/api/auth/register", json={"username": username, "password": password}
    )


async def login(client, username="alice", password="correct horse"):  # type: ignore[no-untyped-def]
    return await client.post("/api/auth/login", json={"username": username, "password": password})


async def test_register_then_log_in_gives_a_working_token_pair(
    client, db: asyncpg.Connection
) -> None:
    created = await register(client)
    assert created.status_code == 201
    account = await created.get_json()
    assert account["username"] == "alice"

    response = await login(client)
    assert response.status_code == 200
    tokens = await response.get_json()
    assert tokens["expiresIn"] == 900
    assert tokens["tokenType"] == "Bearer"
    claims = jwt.decode(tokens["accessToken"], TEST_SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["username"]) == (account["userId"], "alice")
    assert claims["exp"] - claims["iat"] == 900

    done = await client.post(
        "/api/action/complete",
        json={"actionId": "quiz_a"},
        headers={"Authorization": f"Bearer {tokens['accessToken']}"},
    )
    assert done.status_code == 200
    stored = await db.fetchval("SELECT password_hash FROM users")
    assert stored.startswith("$argon2id$") and "correct horse" not in stored


async def test_usernames_are_unique_ignoring_case(client) -> None:
    await register(client, "Alice")
    again = await register(client, "alice")
    assert again.status_code == 409
    assert (await again.get_json())["error"]["code"] == "USERNAME_TAKEN"


async def test_registration_validates_its_input(client) -> None:
    for body in (
        {"username": "al", "password": "long enough"},
        {"username": "a" * 51, "password": "long enough"},
        {"username": "bad name", "password": "long enough"},
        {"username": "alice", "password": "short"},
        {"username": "alice"},
        {"username": 5, "password": "long enough"},
    ):
        response = await client.post("/api/auth/register", json=body)
        assert response.status_code == 400, body
        assert (await response.get_json())["error"]["code"] == "VALIDATION_ERROR"


async def test_wrong_password_and_unknown_user_look_the_same(client) -> None:
    await register(client)
    wrong = await login(client, password="wrong password")
    unknown = await login(client, username="nobody", password="wrong password")
    assert wrong.status_code == unknown.status_code == 401
    assert (await wrong.get_json()) == (await unknown.get_json())


async def test_refresh_rotates_and_a_reused_token_revokes_the_family(client) -> None:
    await register(client)
    first = await (await login(client)).get_json()

    rotated = await client.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert rotated.status_code == 200
    second = await rotated.get_json()
    assert second["refreshToken"] != first["refreshToken"]

    reused = await client.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert reused.status_code == 401
    # The reuse looks like theft: the newer token of the same family stops working too.
    after = await client.post("/api/auth/refresh", json={"refreshToken": second["refreshToken"]})
    assert after.status_code == 401


async def test_concurrent_refreshes_of_one_token_succeed_once(client) -> None:
    await register(client)
    token = (await (await login(client)).get_json())["refreshToken"]
    responses = await asyncio.gather(
        *(client.post("/api/auth/refresh", json={"refreshToken": token}) for _ in range(5))
    )
    assert sorted(r.status_code for r in responses) == [200, 401, 401, 401, 401]


async def test_an_unknown_refresh_token_is_unauthorized(client) -> None:
    response = await client.post("/api/auth/refresh", json={"refreshToken": "made-up"})
    assert response.status_code == 401
    assert (await response.get_json())["error"]["code"] == "UNAUTHORIZED"


async def test_login_attempts_are_limited_per_username(client, app, settings) -> None:
    services_of(app).settings = settings.with_overrides(login_attempts_per_minute=3)
    await register(client)
    statuses = [(await login(client, password="wrong password")).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    # Even the right password waits: the limit stops guessing, whoever guesses.
    blocked = await login(client)
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) >= 1


async def test_behind_a_trusted_proxy_each_client_has_its_own_login_budget(
    client, app, settings
) -> None:
    from app.core.client_ip import parse_networks

    services_of(app).settings = settings.with_overrides(
        login_attempts_per_client_per_minute=2,
        trusted_proxies=parse_networks("127.0.0.0/8, ::1, 192.0.2.0/24"),
    )

    async def attempt(client_ip: str) -> int:
        response = await client.post(
            "/api/auth/login",
            json={"username": f"u{client_ip[-1]}{attempt.count}", "password": "wrong password"},
            headers={"X-Forwarded-For": client_ip},
            scope_base={"client": ("127.0.0.1", 40000)},  # the proxy, as the direct peer
        )
        attempt.count += 1
        return response.status_code

    attempt.count = 0  # type: ignore[attr-defined]
    assert [await attempt("198.51.100.1") for _ in range(3)] == [401, 401, 429]
    assert await attempt("198.51.100.2") == 401  # another client behind the same proxy
