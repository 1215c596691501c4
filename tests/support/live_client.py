"""A WebSocket client for the live endpoint, built on the `websockets` library (not on the
project's code), with the waits the tests need."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection

LIVE_PATH = "/api/leaderboard/live"


def live_url(base_ws_url: str, token: str | None = None) -> str:
    url = base_ws_url + LIVE_PATH
    return f"{url}?token={token}" if token is not None else url


class LiveClient:
    """One connection; ``updates()`` answers PINGs with PONGs unless told not to."""

    def __init__(self, ws: ClientConnection, answer_pings: bool = True) -> None:
        self.ws = ws
        self.answer_pings = answer_pings
        self.pings = 0

    async def next_json(self, timeout: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        parsed: dict[str, Any] = orjson.loads(raw)
        return parsed

    async def next_update(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next LEADERBOARD_UPDATE, answering or counting PINGs on the way."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.next_json(max(0.01, deadline - loop.time()))
            if message["type"] == "PING":
                self.pings += 1
                if self.answer_pings:
                    await self.ws.send('{"type":"PONG"}')
                continue
            return message

    async def heartbeats(self, count: int, timeout: float = 10.0) -> None:
        """Read (answering PINGs) until ``count`` PINGs have arrived in total."""
        async with asyncio.timeout(timeout):
            while self.pings < count:
                message = await self.next_json(timeout)
                if message["type"] == "PING":
                    self.pings += 1
                    if self.answer_pings:
                        await self.ws.send('{"type":"PONG"}')

    async def update_matching(self, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
        """The first update for which ``predicate(message)`` holds (older ones are skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.next_update(max(0.01, deadline - loop.time()))
            if predicate(message):
                return message

    async def close_code(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes; the close code it sent."""
        with contextlib.suppress(websockets.ConnectionClosed):
            async with asyncio.timeout(timeout):
                while True:
                    message = orjson.loads(await self.ws.recv())
                    if message.get("type") == "PING":
                        self.pings += 1
                        if self.answer_pings:
                            await self.ws.send('{"type":"PONG"}')
        return self.ws.close_code


@contextlib.asynccontextmanager
async def live_client(
    base_ws_url: str, token: str | None = None, answer_pings: bool = True, **options: Any
) -> AsyncIterator[LiveClient]:
    # The library's own keepalive pings would hide what the application heartbeat does.
    async with websockets.connect(
        live_url(base_ws_url, token), ping_interval=None, open_timeout=10, **options
    ) as ws:
        yield LiveClient(ws, answer_pings)


def users_of(message: dict[str, Any]) -> list[tuple[str, int]]:
    return [(u["username"], u["score"]) for u in message["data"]["users"]]
