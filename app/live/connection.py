"""One live socket: the WebSocket handshake, the client's frames, and non-blocking writes.

Built on the ``websockets`` library's Sans-I/O ``ServerProtocol`` (handshake, frame parsing,
control frames, the closing handshake) under a plain asyncio protocol, so a broadcast is a
``transport.write`` of bytes encoded once (see frames.py) and never awaits a client.

Until the upgrade request is answered, the library is given that request and nothing after
it: it would read any bytes sent without waiting for the answer as frames of a connection that
is not open yet, and fail on them (an unanswered refusal, a traceback per connection).

Back-pressure: the write-buffer high-water mark is 0, so ``pause_writing`` fires as soon as the
kernel does not take a whole frame. While paused, the connection keeps only the newest unsent
frame (the top 10 is state, older snapshots are worthless) and the hub closes it once it has
been paused for longer than the send timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import struct
from enum import Enum
from typing import Protocol, cast
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import InvalidMessage
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from app.core.boards import ALL_TIME
from app.live import codes, frames
from app.live.codes import Close

log = logging.getLogger(__name__)

# The library logs every open and close at INFO; at thousands of sockets that is noise.
_WS_LOG = logging.getLogger("app.live.wire")
_WS_LOG.setLevel(logging.WARNING)

# After sending a close frame, wait this long for the client's before dropping the socket.
CLOSE_GRACE_SECONDS = 2.0
# Replies (PONG, errors) still go out while a client is not reading; past this it is dropped.
MAX_BUFFERED_BYTES = 64 * 1024
# The upgrade request may not be larger (Hypercorn's own limit for a request head).
MAX_HANDSHAKE_BYTES = 16 * 1024
_BAD_REQUEST = "Failed to open a WebSocket connection: did not receive a valid HTTP request.\n"
_LINGER_RESET = struct.pack("ii", 1, 0)
# A board id is a slug of at most 40 characters; a longer name is cut before it is looked up.
MAX_BOARD_CHARS = 40


class Phase(Enum):
    HANDSHAKE = "handshake"
    AUTH = "auth"  # WebSocket open, waiting for (or checking) the token
    LIVE = "live"  # authenticated: receives every change
    CLOSING = "closing"
    CLOSED = "closed"


class Refusal(Exception):
    """Refuse the upgrade with an HTTP status, before the WebSocket opens."""

    def __init__(self, status: int, text: str, retry_after: int | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.retry_after = status, text, retry_after


class Owner(Protocol):
    """What a connection needs from its node (implemented by ``LiveNode``)."""

    auth_timeout: float

    def admit(self, conn: LiveConnection) -> None:
        """Raise Refusal when this upgrade must be refused (node full, too many attempts)."""

    def opened(self, conn: LiveConnection) -> None: ...

    def authenticate(self, conn: LiveConnection, token: str) -> None: ...

    def subscribe(self, conn: LiveConnection, board: str) -> None:
        """Switch an authenticated connection to another board (SUBSCRIBE)."""

    def closing(self, conn: LiveConnection) -> None: ...

    def closed(self, conn: LiveConnection) -> None: ...


class LiveConnection(asyncio.Protocol):
    def __init__(self, owner: Owner, max_frame_bytes: int) -> None:
        self.id = secrets.token_hex(8)
        self.phase = Phase.HANDSHAKE
        self.peer = "unknown"
        self.forwarded_for: str | None = None  # X-Forwarded-For of the upgrade request
        self.user_id: str | None = None
        self.issued_ms = 0  # when its access token was issued (ended sessions close it)
        self.board = ALL_TIME  # the board whose changes it receives (?board=, SUBSCRIBE)
        self.opened_at = 0.0
        self.auth_deadline: float | None = None
        self.pong_deadline: float | None = None
        self.paused_since: float | None = None
        self.auth_started = False
        self._owner = owner
        self._ws = ServerProtocol(max_size=max_frame_bytes, logger=_WS_LOG)
        self._transport: asyncio.Transport | None = None
        self._head: bytearray | None = bytearray()  # the upgrade request, until answered
        self._answered = False  # an HTTP response went out for the upgrade request
        self._pending: bytes | None = None
        self._fragments: list[bytes] = []
        self._binary = False
        self._abort_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        transport.set_write_buffer_limits(high=0)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.peer = str(peer[0])

    def data_received(self, data: bytes) -> None:
        try:
            if self._head is not None:
                self._receive_handshake(data)
            else:
                self._ws.receive_data(data)
                self._process_events()
        except Exception:
            # Never let one client's bytes break the node; never show it a traceback.
            log.exception("live connection failed; dropping it")
            self.abort()

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        self._process_events()
        return None  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._abort_timer is not None:
            self._abort_timer.cancel()
        previous, self.phase = self.phase, Phase.CLOSED
        self._pending = None
        if previous is not Phase.HANDSHAKE:
            self._owner.closed(self)

    def pause_writing(self) -> None:
        self.paused_since = asyncio.get_running_loop().time()

    def resume_writing(self) -> None:
        self.paused_since = None
        pending, self._pending = self._pending, None
        if pending is not None:
            self.write(pending)

    # -- what the node does with it ---------------------------------------------------------

    def push(self, frame: bytes) -> None:
        """Deliver a broadcast frame without waiting: written now, or kept as the newest."""
        if self.paused_since is None:
            self.write(frame)
        else:
            self._pending = frame

    def write(self, frame: bytes) -> None:
        transport = self._transport
        if transport is None or self._ws.state is not State.OPEN or transport.is_closing():
            return
        transport.write(frame)
        if transport.get_write_buffer_size() > MAX_BUFFERED_BYTES:
            self.abort()

    def go_live(self, user_id: str, first_frame: bytes) -> None:
        self.user_id = user_id
        self.phase = Phase.LIVE
        self.auth_deadline = None
        if first_frame:
            self.write(first_frame)

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake; the socket is dropped if the client does not answer."""
        if self.phase in (Phase.CLOSING, Phase.CLOSED):
            return
        self.phase = Phase.CLOSING
        self._pending = None
        self._owner.closing(self)
        if self._ws.state is State.OPEN:
            self._ws.send_close(code, reason)
            self._flush()
        else:
            self.abort()

    def abort(self) -> None:
        """Drop the socket now. With linger 0 the kernel resets it instead of keeping unsent
        data for a client that does not read (an orphan that would hold memory for minutes)."""
        transport = self._transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        transport.abort()

    @property
    def is_open(self) -> bool:
        return self.phase in (Phase.AUTH, Phase.LIVE)

    # -- inside ------------------------------------------------------------------------------

    def _receive_handshake(self, data: bytes) -> None:
        """Feed the library the upgrade request, and what follows only once it is accepted."""
        head = self._head
        assert head is not None
        seen = len(head)
        head += data
        end = head.find(b"\r\n\r\n", max(0, seen - 3))
        if end < 0:
            if len(head) > MAX_HANDSHAKE_BYTES:
                self._head = None
                self._ws.send_response(
                    self._ws.reject(431, "Failed to open a WebSocket connection: too large.\n")
                )
                self._flush()
                return
            self._ws.receive_data(data)  # a line the library refuses is answered at once
            self._process_events()
            if self._ws.handshake_exc is not None:
                self._head = None
            return
        cut = end + 4 - seen
        self._head = None
        self._ws.receive_data(data[:cut])
        self._process_events()
        if cut < len(data) and self._ws.state is State.OPEN:
            # Frames sent without waiting for the 101 (legal for a client that trusts it).
            self._ws.receive_data(data[cut:])
            self._process_events()
        # After a refusal the rest is dropped: the answer says Connection: close.

    def _process_events(self) -> None:
        for event in self._ws.events_received():
            if isinstance(event, Request):
                self._on_request(event)
            elif isinstance(event, Frame):
                self._on_frame(event)
        self._flush()

    def _on_request(self, request: Request) -> None:
        target = urlsplit(request.path)
        response: Response
        try:
            if target.path != codes.LIVE_PATH:
                raise Refusal(404, "Not found.\n")
            query = parse_qs(target.query)
            self.board = query.get("board", [ALL_TIME])[0][:MAX_BOARD_CHARS]
            self.forwarded_for = request.headers.get("X-Forwarded-For")
            self._owner.admit(self)
        except Refusal as refusal:
            response = self._ws.reject(refusal.status, refusal.text)
            if refusal.retry_after is not None:
                response.headers["Retry-After"] = str(refusal.retry_after)
            self._ws.send_response(response)
            return
        response = self._ws.accept(request)
        self._ws.send_response(response)
        if response.status_code != 101:
            return  # not a valid upgrade; the library answered with an HTTP error
        self.phase = Phase.AUTH
        self.opened_at = asyncio.get_running_loop().time()
        self._owner.opened(self)
        tokens = query.get("token")
        if tokens:
            self._start_auth(tokens[0])
        else:
            self.auth_deadline = self.opened_at + self._owner.auth_timeout

    def _on_frame(self, frame: Frame) -> None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self._fragments = [bytes(frame.data)]
            self._binary = frame.opcode is Opcode.BINARY
        elif frame.opcode is Opcode.CONT:
            # The library bounds the whole message (max_size), so this stays small.
            self._fragments.append(bytes(frame.data))
        else:
            return  # control frames: the library answers PINGs and closes by itself
        if frame.fin:
            message, self._fragments = b"".join(self._fragments), []
            if self.is_open:
                self._on_message(message)

    def _on_message(self, data: bytes) -> None:
        if not self._binary:
            try:
                data.decode()
            except UnicodeDecodeError:
                # RFC 6455 §8.1: a text message that is not UTF-8 fails the connection.
                self.close(Close.INVALID_DATA, "Text messages must be UTF-8.")
                return
        parsed = None if self._binary else frames.parse_client_frame(data)
        if parsed is None:
            self._error(codes.BAD_FRAME, 'Send JSON text frames like {"type":"PONG"}.')
        elif parsed.type == "PONG":
            self.pong_deadline = None
        elif parsed.type == "PING":
            self.write(frames.PONG)
        elif parsed.type == "AUTH":
            if self.phase is Phase.LIVE or self.auth_started:
                self._error(codes.ALREADY_AUTHENTICATED, "This connection is authenticated.")
            else:
                self._start_auth(parsed.token or "")
        elif parsed.type == "SUBSCRIBE" and self.phase is Phase.LIVE:
            self._owner.subscribe(self, (parsed.board or "")[:MAX_BOARD_CHARS])
        elif self.phase is Phase.AUTH:
            self._error(codes.NOT_AUTHENTICATED, 'Send {"type":"AUTH","token":"..."} first.')
        else:
            self._error(codes.UNKNOWN_TYPE, f"Unknown message type {parsed.type[:40]!r}.")

    def _start_auth(self, token: str) -> None:
        self.auth_started = True
        self.auth_deadline = None
        self._owner.authenticate(self, token)

    def _error(self, code: str, message: str) -> None:
        self.write(frames.error_frame(code, message))

    def _flush(self) -> None:
        transport = self._transport
        if transport is None:
            return
        for data in self._ws.data_to_send():
            if data:
                self._answered = True
                transport.write(data)
            else:
                if self._unanswered_bad_request():
                    # The library closes without a word on a request it cannot parse (a
                    # body, Transfer-Encoding, a malformed line): say 400, as any server would.
                    transport.write(self._ws.reject(400, _BAD_REQUEST).serialize())
                transport.close()  # the library's end of stream: the server closes TCP
        if self._ws.close_expected() and self._abort_timer is None:
            if self.is_open:  # the library is closing (client's close frame, oversize frame)
                self.phase = Phase.CLOSING
                self._owner.closing(self)
            self._abort_timer = asyncio.get_running_loop().call_later(
                CLOSE_GRACE_SECONDS, self.abort
            )

    def _unanswered_bad_request(self) -> bool:
        error = self._ws.handshake_exc
        return (
            self.phase is Phase.HANDSHAKE
            and not self._answered
            and isinstance(error, InvalidMessage)
            and not isinstance(error.__cause__, EOFError)  # the client left mid-request
        )
