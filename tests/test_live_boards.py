"""WS /api/leaderboard/live?board=...: a socket watches one board, and may switch with SUBSCRIBE."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from app.core.boards import BUILT_IN_BOARDS
from tests.conftest import Player
from tests.support.live_client import LIVE_PATH, LiveClient, users_of
from tests.support.server_process import ServerProcess

LIVE_KNOBS = {"RATE_LIMIT_PER_MINUTE": "1000", "WS_CONNECTS_PER_IP_PER_MINUTE": "100000"}


@pytest.fixture
def server(
    service_env: dict[str, str], tmp_path: Path, catalog_loaded: Any, redis: Any
) -> Iterator[ServerProcess]:
    with ServerProcess({**service_env, **LIVE_KNOBS}, tmp_path) as process:
        yield process


@contextlib.asynccontextmanager
async def watching(
    server: ServerProcess, token: str, board: str | None
) -> AsyncIterator[LiveClient]:
    query = f"?token={token}" + (f"&board={board}" if board else "")
    async with websockets.connect(
        server.ws_url + LIVE_PATH + query, ping_interval=None, open_timeout=10
    ) as ws:
        yield LiveClient(ws)


async def score(server: ServerProcess, player: Player, action: str) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.post(
            "/api/action/complete", json={"actionId": action}, headers=player.headers
        )
    assert response.status_code == 200, response.text


def current(board_id: str) -> str:
    board = next(b for b in BUILT_IN_BOARDS if b.id == board_id)
    period = board.current_period(datetime.now(UTC))
    assert period is not None
    return period.id


async def test_a_socket_opened_on_a_board_starts_with_that_boards_top_10(
    server, make_player
) -> None:
    ada = await make_player("ada")
    await score(server, ada, "level_a")
    async with watching(server, ada.token, "weekly") as client:
        first = await client.next_update()
        assert (first["board"], first["period"]) == ("weekly", current("weekly"))
        assert users_of(first) == [("ada", 50)]


async def test_subscribe_switches_the_board_and_says_so(server, make_player) -> None:
    ada = await make_player("ada")
    await score(server, ada, "boss")
    async with watching(server, ada.token, None) as client:
        first = await client.next_update()
        assert users_of(first) == [("ada", 100)]
        await client.ws.send('{"type":"SUBSCRIBE","board":"daily"}')
        reply = await client.next_update()
        assert reply == {"type": "SUBSCRIBED", "board": "daily", "period": current("daily")}
        update = await client.next_update()
        assert (update["type"], update["board"], update["period"]) == (
            "LEADERBOARD_UPDATE",
            "daily",
            current("daily"),
        )
        assert users_of(update) == [("ada", 100)]


async def test_an_unknown_board_is_refused(server, make_player) -> None:
    ada = await make_player("ada")
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with watching(server, ada.token, "nope"):
            pass
    assert refused.value.response.status_code == 404
    async with watching(server, ada.token, None) as client:
        await client.next_update()
        await client.ws.send('{"type":"SUBSCRIBE","board":"nope"}')
        error = await client.next_update()
        assert (error["type"], error["code"]) == ("ERROR", "BOARD_NOT_FOUND")
        # Still open, still on its board.
        await client.ws.send('{"type":"PING"}')
        assert (await client.next_update())["type"] == "PONG"
