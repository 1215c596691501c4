"""GET /api/leaderboard answered by the front dispatcher (app/board_http.py) must be the
answer Quart gives: same status, body and headers, 304 on a matching ETag, keep-alive, and a
hand-over to Quart for any request it does not answer itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h11
import pytest

from app.core.board import Board, message_from_users
from app.edge.board_http import BoardResponder
from app.edge.front import FrontProtocol, Handoff
from tests.support.server_process import ServerProcess

PLAIN = b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\n"
# Volatile per response; everything else must match.
VOLATILE = {"date", "x-request-id"}


@pytest.fixture
def server(
    service_env: dict[str, str], tmp_path: Path, catalog_loaded: Any, redis: Any
) -> Iterator[ServerProcess]:
    with ServerProcess(service_env, tmp_path) as process:
        yield process


async def exchange(port: int, *requests: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Send each request on one keep-alive connection; the parsed responses, in order."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    try:
        for request in requests:
            writer.write(request + b"\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            lines = head.decode().split("\r\n")
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            answers.append((int(lines[0].split()[1]), headers, body))
    finally:
        writer.close()
    return answers


def stable(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in VOLATILE}


async def test_the_front_answers_the_board_exactly_as_quart_does(server: ServerProcess) -> None:
    # The first read of a cold node goes to Quart (it seeds the board); X-Request-ID always does.
    via_quart, fast, again = await exchange(
        server.port, PLAIN + b"X-Request-ID: quart-1\r\n", PLAIN, PLAIN
    )
    assert via_quart[2] == fast[2] == again[2]
    assert via_quart[0] == fast[0] == 200
    assert stable(via_quart[1]) == stable(fast[1])
    assert fast[1]["x-request-id"] and fast[1]["x-request-id"] != again[1]["x-request-id"]
    assert via_quart[1]["x-request-id"] == "quart-1"

    etag = fast[1]["etag"].encode()
    conditional = PLAIN + b"If-None-Match: " + etag + b"\r\n"
    fast_304, quart_304 = await exchange(
        server.port, conditional, conditional + b"X-Request-ID: quart-2\r\n"
    )
    assert fast_304[0] == quart_304[0] == 304
    assert fast_304[2] == quart_304[2] == b""
    assert stable(fast_304[1]) == stable(quart_304[1])
    assert "content-type" not in fast_304[1]  # an empty 304 has no type (Quart's was text/html)


async def test_after_fast_reads_the_connection_goes_on_to_quart(server: ServerProcess) -> None:
    answers = await exchange(
        server.port,
        PLAIN,
        PLAIN,
        b"GET /api/actions HTTP/1.1\r\nHost: x\r\n",
        PLAIN,
    )
    assert [status for status, _, _ in answers] == [200, 200, 200, 200]
    assert b'"actions"' in answers[2][2]
    assert answers[3][2] == answers[0][2]


def test_only_the_plain_read_is_answered_by_the_front() -> None:
    board = Board()
    responder = BoardResponder(board)
    head = b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\n"
    assert responder.answer(head + b"\r\n") is None  # no board yet: Quart reads Redis or PostgreSQL
    board.offer(message_from_users([], None))
    assert responder.answer(head + b"\r\n") is not None
    for extra in (
        b"Connection: close",
        b"Content-Length: 5",
        b"Transfer-Encoding: chunked",
        b"X-Request-ID: mine",
        b"Upgrade: h2c",
        b"Host: y",  # a second Host: h11 refuses the request
        b"No-Colon",
        b"X-Nul: a\x00b",
        b"X-Bare-Cr: a\rb",
        b" folded",
        b"X-Obs-Text: caf\xc3\xa9",
        b"X-Pad: " + b"a" * 9000,
    ):
        assert responder.answer(head + extra + b"\r\n\r\n") is None, extra
    assert responder.answer(head + b"Content-Length: 0\r\n\r\n") is not None
    assert responder.answer(b"GET /api/leaderboard HTTP/1.1\r\n\r\n") is None  # no Host
    assert responder.answer(head.replace(b"\r\n", b"\n") + b"\n") is None


HEADS = [
    b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/leaderboard HTTP/1.1\r\nHost: localhost:3000\r\nAccept: */*\r\n"
    b'If-None-Match: "abc"\r\nContent-Length: 0\r\nUser-Agent: t/1 (x; y)\r\n\r\n',
]
ODD_BYTES = [b"\x00", b"\r", b"\n", b"\r\n", b" ", b"\t", b":", b"\x7f", b"\x80", b"\xff", b","]


def mutations(head: bytes) -> Iterator[bytes]:
    for at in range(len(head) + 1):
        for odd in ODD_BYTES:
            yield head[:at] + odd + head[at:]
        if at < len(head):
            yield head[:at] + head[at + 1 :]


def test_whatever_the_fast_path_answers_h11_reads_as_the_same_plain_request() -> None:
    # Hypercorn parses with h11: where the fast path answers, h11 must see exactly one
    # GET /api/leaderboard HTTP/1.1 with no body, ending where the fast path says it ends.
    board = Board()
    board.offer(message_from_users([], None))
    responder = BoardResponder(board)
    answered = 0
    for base in HEADS:
        for head in mutations(base):
            if responder.answer(head) is None:
                continue
            answered += 1
            conn = h11.Connection(h11.SERVER)
            conn.receive_data(head)
            request = conn.next_event()
            assert isinstance(request, h11.Request), head
            assert (request.method, request.target, request.http_version) == (
                b"GET",
                b"/api/leaderboard",
                b"1.1",
            ), head
            assert isinstance(conn.next_event(), h11.EndOfMessage), head
            assert conn.trailing_data == (b"", False), head
    assert answered > 100  # the check above did run on many answered variants


class _Clock:
    """Stands in for the event loop's clock and timers in FrontProtocol."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timer: tuple[float, Any] | None = None

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Any) -> asyncio.TimerHandle:
        self.timer = (self.now + delay, callback)
        return asyncio.get_running_loop().call_later(3600, lambda: None)

    def run_timer(self) -> None:
        assert self.timer is not None
        self.now, callback = self.timer
        self.timer = None
        callback()


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def abort(self) -> None:
        self.aborted = True


async def test_keep_alive_between_fast_reads_lasts_the_idle_timeout_from_the_last_one() -> None:
    board = Board()
    board.offer(message_from_users([], None))
    handoff = Handoff(lambda *_: None, lambda: None, 10.0, BoardResponder(board))
    for reads_at in ([], [6.0], [3.0, 9.0, 12.0]):
        front, clock, transport = FrontProtocol(handoff), _Clock(), _Transport()
        front._loop = clock
        front.connection_made(transport)
        for at in reads_at:
            clock.now = at
            front.data_received(PLAIN + b"\r\n")
        while not transport.aborted:
            clock.run_timer()
        # Dropped exactly one idle timeout after the last read (or after connecting).
        assert clock.now == (reads_at[-1] if reads_at else 0.0) + 10.0
        assert len(transport.written) == len(reads_at)
        front.connection_lost(None)
