"""Ended sessions across two real server processes sharing PostgreSQL and Redis: logout
everywhere closes the user's socket on the other node (4006) and refuses the old token there;
a deleted or banned account's socket closes within 5 s."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.live_client import live_client
from tests.support.server_process import ServerProcess
from tests.test_live_protocol import LIVE_KNOBS


@pytest.fixture
def nodes(
    service_env: dict[str, str], tmp_path: Path, catalog_loaded: Any, redis: Any
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = {**service_env, **LIVE_KNOBS}
    with ServerProcess(env, tmp_path) as a, ServerProcess(env, tmp_path) as b:
        yield a, b


async def test_logout_all_on_one_node_closes_the_socket_on_the_other_with_4006(
    nodes: tuple[ServerProcess, ServerProcess], make_player: Any
) -> None:
    a, b = nodes
    ada, bob = await make_player("ada"), await make_player("bob")
    async with (
        live_client(b.ws_url, ada.token) as ada_on_b,
        live_client(b.ws_url, bob.token) as bob_on_b,
    ):
        await ada_on_b.next_update()
        await bob_on_b.next_update()
        async with httpx.AsyncClient(base_url=a.base_url) as http:
            out = await http.post("/api/auth/logout-all", headers=ada.headers)
        assert out.status_code == 204
        assert await ada_on_b.close_code(timeout=5) == 4006
        # Somebody else's socket stays.
        assert bob_on_b.ws.close_code is None
    async with httpx.AsyncClient(base_url=b.base_url) as http:
        refused = await http.get("/api/me", headers=ada.headers)
        assert refused.status_code == 401
        assert (await http.get("/api/me", headers=bob.headers)).status_code == 200
    # The old token cannot open a socket either.
    async with live_client(a.ws_url, ada.token) as again:
        assert await again.close_code() == 4006


async def test_a_deleted_user_s_socket_closes_and_the_token_is_refused_within_5_s(
    nodes: tuple[ServerProcess, ServerProcess], make_player: Any, db: asyncpg.Connection
) -> None:
    a, b = nodes
    ada = await make_player("ada")
    async with live_client(b.ws_url, ada.token) as client:
        await client.next_update()
        loop = asyncio.get_running_loop()
        began = loop.time()
        await db.execute("DELETE FROM users WHERE id = $1", ada.user_id)
        assert await client.close_code(timeout=5) == 4006
        assert loop.time() - began < 5
    async with httpx.AsyncClient(base_url=a.base_url) as http:
        complete = await http.post(
            "/api/action/complete", json={"actionId": "nope"}, headers=ada.headers
        )
    assert complete.status_code == 401


async def test_a_banned_user_s_socket_closes_with_4007(
    nodes: tuple[ServerProcess, ServerProcess], make_player: Any, db: asyncpg.Connection
) -> None:
    a, _ = nodes
    ada = await make_player("ada")
    async with live_client(a.ws_url, ada.token) as client:
        await client.next_update()
        await db.execute("UPDATE users SET banned_at = now() WHERE id = $1", ada.user_id)
        assert await client.close_code(timeout=5) == 4007
    async with httpx.AsyncClient(base_url=a.base_url) as http:
        refused = await http.post(
            "/api/action/complete", json={"actionId": "boss"}, headers=ada.headers
        )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "ACCOUNT_BANNED"
