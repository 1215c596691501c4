"""The front of the listening socket: live WebSocket upgrades to the live node, everything
else to Hypercorn, on one port.

It reads the request line of a new connection (no more) and hands the connection over with
what it read. The one exception is the plain board read (``GET /api/leaderboard``), which it
answers itself from bytes built once per change (board_http.py), keeping the connection
for the next request until one arrives that Quart must answer. Whatever it does not answer
goes to Hypercorn byte for byte, so Hypercorn's parser is the one that judges it. The live
endpoint writes pre-encoded frames straight to the socket; every other request goes through
Hypercorn and the Quart app untouched.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import cast

from app.edge.board_http import MAX_HEAD_BYTES, BoardResponder
from app.edge.board_http import REQUEST_LINE as BOARD_REQUEST_LINE
from app.live.codes import LIVE_PATH
from app.live.connection import LiveConnection

# A request line longer than this is not ours; Hypercorn answers it.
_MAX_SNIFF = 8192
_LIVE_TARGET = LIVE_PATH.encode()
_BOARD_START = BOARD_REQUEST_LINE + b"\r\n"
# A line feed without its carriage return: not the plain form, whatever follows.
_BARE_LF = re.compile(rb"(?<!\r)\n")


class Handoff:
    """Where a connection goes once its first line is known."""

    def __init__(
        self,
        to_http: Callable[[asyncio.Transport, bytes], None],
        live_protocol: Callable[[], LiveConnection],
        idle_timeout: float,
        board: BoardResponder | None = None,
    ) -> None:
        self.to_http = to_http
        self.live_protocol = live_protocol
        self.idle_timeout = idle_timeout
        self.board = board


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
        self._loop = asyncio.get_running_loop()
        self._active_at = 0.0  # when the last request was answered here

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        self._active_at = self._loop.time()
        self._timer = self._loop.call_later(self._handoff.idle_timeout, self._idle)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        board = self._handoff.board
        while self._transport is not None:
            buffer = self._buffer
            if b"\n" not in buffer and len(buffer) < _MAX_SNIFF:
                return  # the request line is on its way
            if board is None or not buffer.startswith(_BOARD_START):
                self._hand_over(buffer)
                return
            # The end of a strict head is its first CRLFCRLF; with a bare LF anywhere, h11
            # may end it elsewhere, so it is not ours to find (or to wait for).
            end = buffer.find(b"\r\n\r\n") + 4
            if end < 4:
                if len(buffer) <= MAX_HEAD_BYTES and _BARE_LF.search(buffer) is None:
                    return  # the rest of the headers is on its way
                self._hand_over(buffer)
                return
            response = board.answer(buffer[:end])
            if response is None:
                self._hand_over(buffer)
                return
            self._buffer = buffer[end:]
            self._transport.write(response)
            # Keep-alive: the next request has as long (checked when the timer fires, which
            # costs less than a new timer per request).
            self._active_at = self._loop.time()

    def _hand_over(self, head: bytes) -> None:
        transport, self._transport = self._transport, None
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

    def pause_writing(self) -> None:
        # A client that sends reads without reading the answers is not read from either.
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()

    def _idle(self) -> None:
        # A connection that sends no (next) request must not hold a socket forever.
        self._timer = None
        if self._transport is None:
            return
        left = self._active_at + self._handoff.idle_timeout - self._loop.time()
        if left > 0:
            self._timer = self._loop.call_later(left, self._idle)
        else:
            self._transport.abort()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
