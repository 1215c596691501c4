"""The front of the listening socket: live WebSocket upgrades to the live node, everything
else to Hypercorn, on one port.

It reads the request line of a new connection (no more) and hands the connection over with
what it read. The exceptions are the plain board read (``GET /api/leaderboard``), which it
answers itself from bytes built once per change (board_http.py), and the plain completion
(``POST /api/action/complete``, complete_http.py), answered by the same functions as the
Quart route; each keeps the connection for the next request until one arrives that Quart
must answer. Whatever it does not answer
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
from app.edge.complete_http import (
    NEED_MORE,
    REQUEST_START,
    BodyPending,
    CompleteResponder,
    Plain,
)
from app.live.codes import LIVE_PATH
from app.live.connection import LiveConnection

# A request line longer than this is not ours; Hypercorn answers it.
_MAX_SNIFF = 8192
_LIVE_TARGET = LIVE_PATH.encode()
_BOARD_START = BOARD_REQUEST_LINE + b"\r\n"
_COMPLETE_START = REQUEST_START
# Pipelined bytes held while a completion is answered; beyond this the socket is not read.
_MAX_PENDING = 64 * 1024
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
        complete: CompleteResponder | None = None,
    ) -> None:
        self.to_http = to_http
        self.live_protocol = live_protocol
        self.idle_timeout = idle_timeout
        self.board = board
        self.complete = complete
        # Completions being answered here: shutdown lets them finish (see drain).
        self.in_flight: set[asyncio.Task[None]] = set()

    async def drain(self, grace: float) -> None:
        """Let completions in flight finish (up to ``grace`` seconds), then drop the rest."""
        tasks = set(self.in_flight)
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


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
        self._busy = False  # a completion is being answered; later bytes wait in the buffer
        self._lost = False
        self._held = False  # reading paused while pipelined bytes wait for an answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        self._active_at = self._loop.time()
        self._timer = self._loop.call_later(self._handoff.idle_timeout, self._idle)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._busy:
            if len(self._buffer) > _MAX_PENDING and self._transport is not None:
                self._held = True
                self._transport.pause_reading()  # resumed once the answer is written
            return
        board = self._handoff.board
        complete = self._handoff.complete
        while self._transport is not None:
            buffer = self._buffer
            if b"\n" not in buffer and len(buffer) < _MAX_SNIFF:
                return  # the request line is on its way
            if complete is not None and buffer.startswith(_COMPLETE_START):
                plain = complete.read(buffer)
                if plain == NEED_MORE:
                    return  # h11 bounds the head
                if isinstance(plain, BodyPending) and complete.may_wait(plain):
                    return  # the body limit bounds the rest
                if not isinstance(plain, Plain):
                    self._hand_over(buffer)
                    return
                self._buffer = buffer[plain.consumed :]
                self._busy = True
                task = self._loop.create_task(self._complete(complete, plain))
                self._handoff.in_flight.add(task)
                task.add_done_callback(self._handoff.in_flight.discard)
                return
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

    async def _complete(self, complete: CompleteResponder, plain: Plain) -> None:
        """Answer one completion, then go on with whatever arrived meanwhile (in order: the
        next request on this connection waits for this answer, as HTTP/1.1 requires). The
        work finishes even if the client has gone: an award once sent to the database is
        answered for, as Hypercorn lets a handler finish."""
        response = await complete.answer(plain)
        self._busy = False
        transport = self._transport
        if self._lost or transport is None or transport.is_closing():
            return
        transport.write(response)
        self._active_at = self._loop.time()
        if self._held:
            self._held = False
            transport.resume_reading()
        self.data_received(b"")

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
        self._lost = True
        self._stop_timer()

    def _idle(self) -> None:
        # A connection that sends no (next) request must not hold a socket forever.
        self._timer = None
        if self._transport is None:
            return
        if self._busy:
            # Answering a completion: not idle. Its answer restarts the wait.
            self._timer = self._loop.call_later(self._handoff.idle_timeout, self._idle)
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
