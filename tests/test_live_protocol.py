"""WS /api/leaderboard/live on one real server process, spoken to by the `websockets` library:
the snapshot, the changes, the heartbeat, frames, tokens and the per-node cap."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import websockets

from tests.conftest import TEST_SECRET, Player
from tests.support.live_client import live_client, users_of
from tests.support.server_process import ServerProcess

# On top of conftest's service_env: tests open many connections and score often.
LIVE_KNOBS = {"RATE_LIMIT_PER_MINUTE": "1000", "WS_CONNECTS_PER_IP_PER_MINUTE": "100000"}


@pytest.fixture
def env(service_env: dict[str, str]) -> dict[str, str]:
    return {**service_env, **LIVE_KNOBS}


@pytest.fixture
def server(
    env: dict[str, str], tmp_path: Path, catalog_loaded: Any, redis: Any
) -> Iterator[ServerProcess]:
    with ServerProcess(env, tmp_path) as process:
        yield process


async def score(base_url: str, player: Player, action: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.post(
            "/api/action/complete", json={"actionId": action}, headers=player.headers
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_snapshot_first_then_one_message_per_change_of_the_top_10(
    server: ServerProcess, make_player: Any
) -> None:
    ada, bob = await make_player("ada"), await make_player("bob")
    await score(server.base_url, ada, "level_a")
    async with live_client(server.ws_url, ada.token) as client:
        first = await client.next_update()
        assert first["type"] == "LEADERBOARD_UPDATE"
        assert list(first) == ["type", "board", "period", "epoch", "version", "data"]
        assert (first["board"], first["period"]) == ("all-time", "all")
        assert users_of(first) == [("ada", 50)]
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            board = (await http.get("/api/leaderboard")).json()
        # Users exactly as GET shows them.
        assert first["data"]["users"] == board["users"]
        assert first["data"]["updatedAt"] == board["updatedAt"]

        await score(server.base_url, bob, "boss")
        second = await client.next_update()
        assert users_of(second) == [("bob", 100), ("ada", 50)]
        assert second["epoch"] == first["epoch"]
        assert second["version"] == first["version"] + 1


async def test_no_message_when_the_top_10_stays_as_it_was(
    server: ServerProcess, make_player: Any
) -> None:
    top = [await make_player(f"top{i}") for i in range(10)]
    for player in top:
        await score(server.base_url, player, "boss")
    outsider = await make_player("outsider")
    async with live_client(server.ws_url, top[0].token) as client:
        first = await client.next_update()
        assert len(first["data"]["users"]) == 10
        # 10 points cannot reach a top 10 of 100s: nothing may be sent for it...
        result = await score(server.base_url, outsider, "quiz_a")
        assert result["top10Changed"] is False
        # ...so the next message is the one for the next real change, one version later.
        await score(server.base_url, top[9], "quiz_a")
        after = await client.next_update()
        assert after["version"] == first["version"] + 1
        assert users_of(after)[0] == ("top9", 110)


async def test_auth_by_first_frame(server: ServerProcess, make_player: Any) -> None:
    ada = await make_player("ada")
    async with live_client(server.ws_url) as client:
        await client.ws.send('{"type":"PING"}')
        assert await client.next_json() == {"type": "PONG"}
        await client.ws.send('{"type":"WHATEVER"}')
        assert (await client.next_json())["code"] == "NOT_AUTHENTICATED"
        await client.ws.send(f'{{"type":"AUTH","token":"{ada.token}"}}')
        assert (await client.next_update())["type"] == "LEADERBOARD_UPDATE"
        await client.ws.send(f'{{"type":"AUTH","token":"{ada.token}"}}')
        assert (await client.next_json())["code"] == "ALREADY_AUTHENTICATED"


async def test_client_ping_unknown_and_malformed_frames_then_an_oversize_frame(
    server: ServerProcess, make_player: Any
) -> None:
    ada = await make_player("ada")
    async with live_client(server.ws_url, ada.token) as client:
        await client.next_update()
        await client.ws.send('{"type":"PING"}')
        assert await client.next_json() == {"type": "PONG"}
        for frame, code in [
            ("not json", "BAD_FRAME"),
            ("[1,2]", "BAD_FRAME"),
            (b"\x00binary", "BAD_FRAME"),
            ('{"type":"DANCE"}', "UNKNOWN_TYPE"),
        ]:
            await client.ws.send(frame)
            error = await client.next_json()
            assert (error["type"], error["code"]) == ("ERROR", code)
            assert "Traceback" not in error["message"]
        # Still connected and served after all that.
        await client.ws.send('{"type":"PING"}')
        assert await client.next_json() == {"type": "PONG"}
        await client.ws.send("x" * 5000)  # over WS_MAX_FRAME_BYTES (4096)
        assert await client.close_code() == 1009


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("not-a-jwt", 4001),
        ("wrong-secret", 4001),
        ("expired", 4002),
        ("refresh-typed", 4001),
    ],
)
async def test_bad_tokens_close_with_their_code(
    server: ServerProcess, make_player: Any, token: str, expected: int
) -> None:
    ada = await make_player("ada")
    now = int(time.time())
    claims = {"sub": ada.user_id, "username": "ada", "iss": "leaderboard", "typ": "access"}
    tokens = {
        "not-a-jwt": "not-a-jwt",
        "wrong-secret": jwt.encode({**claims, "iat": now, "exp": now + 60}, "x" * 40),
        "expired": jwt.encode({**claims, "iat": now - 120, "exp": now - 60}, TEST_SECRET),
        "refresh-typed": jwt.encode(
            {**claims, "typ": "refresh", "iat": now, "exp": now + 60}, TEST_SECRET
        ),
    }
    for by_frame in (False, True):
        url_token = None if by_frame else tokens[token]
        async with live_client(server.ws_url, url_token) as client:
            if by_frame:
                await client.ws.send(f'{{"type":"AUTH","token":"{tokens[token]}"}}')
            assert await client.close_code() == expected


@pytest.fixture
def short_timings(env: dict[str, str]) -> dict[str, str]:
    return {
        **env,
        "WS_PING_INTERVAL_SECONDS": "0.2",
        "WS_PONG_TIMEOUT_SECONDS": "0.4",
        "WS_AUTH_TIMEOUT_SECONDS": "0.5",
    }


async def test_heartbeat_closes_a_silent_client_and_keeps_a_polite_one(
    short_timings: dict[str, str], tmp_path: Path, catalog_loaded: Any, redis: Any, make_player: Any
) -> None:
    ada, bob = await make_player("ada"), await make_player("bob")
    with ServerProcess(short_timings, tmp_path) as server:
        async with (
            live_client(server.ws_url, ada.token, answer_pings=False) as silent,
            live_client(server.ws_url, bob.token) as polite,
        ):
            await silent.next_update()
            await polite.next_update()
            # 12 heartbeats (2.4 s, six pong timeouts) while the silent one is dropped.
            polite_task = asyncio.create_task(polite.heartbeats(12))
            assert await silent.close_code(timeout=5) == 4004
            assert silent.pings >= 1
            await polite_task
            await polite.ws.send('{"type":"PING"}')
            # Still open: its PONG (or a PING of ours) arrives.
            assert (await polite.next_json())["type"] in {"PONG", "PING"}


async def test_no_auth_frame_in_time_closes_with_4003(
    short_timings: dict[str, str], tmp_path: Path, catalog_loaded: Any, redis: Any
) -> None:
    with ServerProcess(short_timings, tmp_path) as server:
        async with live_client(server.ws_url) as client:
            assert await client.close_code() == 4003


async def test_the_node_cap_refuses_before_accepting_with_a_retryable_503(
    env: dict[str, str], tmp_path: Path, catalog_loaded: Any, redis: Any, make_player: Any
) -> None:
    players = [await make_player(f"player{i}") for i in range(3)]
    with ServerProcess({**env, "WS_MAX_CONNECTIONS": "2"}, tmp_path) as server:
        async with (
            live_client(server.ws_url, players[0].token) as one,
            live_client(server.ws_url, players[1].token) as two,
        ):
            await one.next_update()
            await two.next_update()
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with live_client(server.ws_url, players[2].token):
                    pass
            assert refused.value.response.status_code == 503
            assert refused.value.response.headers["Retry-After"].isdigit()

        # Room again once those two are gone (the count follows closes).
        async def third_gets_in() -> None:
            while True:
                try:
                    async with live_client(server.ws_url, players[2].token) as three:
                        await three.next_update()
                        return
                except websockets.InvalidStatus:
                    await asyncio.sleep(0.05)

        await asyncio.wait_for(third_gets_in(), 5)
        # The HTTP API on the same port is unaffected by the cap.
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            assert (await http.get("/api/leaderboard")).status_code == 200


async def test_per_ip_connection_attempts_are_bounded(
    env: dict[str, str], tmp_path: Path, catalog_loaded: Any, redis: Any, make_player: Any
) -> None:
    ada = await make_player("ada")
    with ServerProcess({**env, "WS_CONNECTS_PER_IP_PER_MINUTE": "3"}, tmp_path) as server:
        for _ in range(3):
            async with live_client(server.ws_url, ada.token) as client:
                await client.next_update()
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with live_client(server.ws_url, ada.token):
                pass
        assert refused.value.response.status_code == 429
        assert int(refused.value.response.headers["Retry-After"]) >= 1


async def test_sigterm_closes_every_socket_with_1001_and_exits_promptly(
    server: ServerProcess, make_player: Any
) -> None:
    ada, bob = await make_player("ada"), await make_player("bob")
    async with (
        live_client(server.ws_url, ada.token) as one,
        live_client(server.ws_url, bob.token) as two,
    ):
        await one.next_update()
        await two.next_update()
        started = time.monotonic()
        stopping = asyncio.get_running_loop().run_in_executor(None, server.stop)
        assert await one.close_code() == 1001
        assert await two.close_code() == 1001
        assert await stopping == 0
        assert time.monotonic() - started < 8
