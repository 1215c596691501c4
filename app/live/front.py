"""The front of the listening socket: live WebSocket upgrades to the live node, everything
else to Hypercorn, on one port.

It reads the request line of a new connection (no more) and hands the connection over with
what it read. The live endpoint writes pre-encoded frames straight to the socket; every other
request goes through Hypercorn and the Quart app untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from app.live.codes import LIVE_PATH
from app.live.connection import LiveConnection

# A request line longer than this is not ours; Hypercorn answers it.
_MAX_SNIFF = 8192
_LIVE_TARGET = LIVE_PATH.encode()


class Handoff:
    """Where a connection goes once its first line is known."""

    def __init__(
        self,
        to_http: Callable[[asyncio.Transport, bytes], None],
        live_protocol: Callable[[], LiveConnection],
        idle_timeout: float,
    ) -> None:
        self.to_http = to_http
        self.live_protocol = live_protocol
        self.idle_timeout = idle_timeout


def is_live_request(head: bytes) -> bool:
    """True when the request line is ``GET /api/leaderboard/live[?...] HTTP/1.x``."""
    method, _, rest = head.partition(b" ")
    target = rest.partition(b" ")[0]
    return method == b"GET" and target.partition(b"?")[0] == _LIVE_TARGET


class FrontProtocol(asyncio.Protocol):
    def __init__(self, handoff: Handoff) -> None:
        self._handoff = handoff
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        # A connection that never sends a request line must not hold a socket forever.
        self._timer = asyncio.get_running_loop().call_later(
            self._handoff.idle_timeout, transport.abort
        )

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if b"\n" not in self._buffer and len(self._buffer) < _MAX_SNIFF:
            return
        transport, head = self._transport, self._buffer
        assert transport is not None
        self._stop_timer()
        self._buffer = b""
        if is_live_request(head.partition(b"\n")[0].rstrip(b"\r")):
            live = self._handoff.live_protocol()
            transport.set_protocol(live)
            live.connection_made(transport)
            live.data_received(head)
        else:
            self._handoff.to_http(transport, head)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
