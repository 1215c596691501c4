"""WS /api/leaderboard/live?board=...: a socket watches one board, and may switch with SUBSCRIBE."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from app.core.boards import BUILT_IN_BOARDS, new_board
from app.core.catalog import Action
from app.db import boards as db_boards
from app.db.actions import upsert_actions
from tests.conftest import Player
from tests.support.live_client import LIVE_PATH, LiveClient, users_of
from tests.support.server_process import ServerProcess

LIVE_KNOBS = {"RATE_LIMIT_PER_MINUTE": "1000", "WS_CONNECTS_PER_IP_PER_MINUTE": "100000"}


@pytest.fixture
def server(
    service_env: dict[str, str], tmp_path: Path, catalog_loaded: Any, redis: Any
) -> Iterator[ServerProcess]:
    # Boards made during a test are listed within a second.
    env = {**service_env, **LIVE_KNOBS, "CATALOG_REFRESH_SECONDS": "1"}
    with ServerProcess(env, tmp_path) as process:
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


async def test_a_boards_changes_reach_its_watchers_only(server, make_player, db) -> None:
    await upsert_actions(db, [Action("tagged_quiz", "Tagged quiz", 10, tags=("quiz",))])
    await db_boards.insert_board(db, new_board("quizzes", "Quizzes", "week", action_tag="quiz"))
    ada, bob = await make_player("ada"), await make_player("bob")
    await wait_listed(server, "quizzes")
    async with (
        watching(server, ada.token, "quizzes") as quizzes,
        watching(server, bob.token, "weekly") as weekly,
    ):
        first_quiz, first_week = await quizzes.next_update(), await weekly.next_update()
        assert users_of(first_quiz) == users_of(first_week) == []
        # A level counts on the weekly board, not on the quiz board.
        await score(server, bob, "level_a")
        moved = await weekly.next_update()
        assert (moved["board"], users_of(moved)) == ("weekly", [("bob", 50)])
        # A tagged quiz counts on both; the quiz board's watcher gets exactly that change.
        await score(server, ada, "tagged_quiz")
        quiz = await quizzes.next_update()
        assert (quiz["board"], users_of(quiz)) == ("quizzes", [("ada", 10)])
        both = await weekly.update_matching(lambda m: len(m["data"]["users"]) == 2)
        assert users_of(both) == [("bob", 50), ("ada", 10)]


async def wait_listed(server: ServerProcess, board_id: str) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        for _ in range(100):
            boards = (await http.get("/api/boards")).json()["boards"]
            if any(b["boardId"] == board_id for b in boards):
                return
            await asyncio.sleep(0.1)
    pytest.fail(f"{board_id} never listed")
