"""The front dispatcher must read every byte stream as Hypercorn reads it.

The same raw bytes go, on a fresh connection each, to three servers of one app:

- ``front``: the real front (app/edge/front.py) with the board fast path, as `leaderboard serve`
  wires it (app/edge/serve.py ``front_factory``);
- ``reference``: the same front with the fast path off: every request but a live upgrade goes
  to Hypercorn untouched;
- ``hypercorn``: Hypercorn alone, accepting as ``hypercorn.asyncio.run.worker_serve`` does.

Each must give the same sequence of response status codes on the connection. A different
count is the signature of request smuggling (one side sees a body where the other sees a
second request); a 200 where Hypercorn says 400 is a request the fast path should not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext

from app.core.settings import Settings
from app.edge import board_http
from app.edge.serve import front_factory, hypercorn_config
from app.http.app import create_app

BOARD = b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\n\r\n"
UPGRADE = (
    b"GET /api/leaderboard/live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
COMPLETE = (
    b"POST /api/action/complete HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer not.a.token\r\n"
    b"Content-Type: application/json\r\nContent-Length: 22\r\n\r\n"
    b'{"actionId": "quiz_a"}'
)
# Sent after every case: the server answers it and closes, which ends the conversation.
LAST = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class Case:
    name: str
    writes: tuple[bytes, ...]  # each write is sent on its own, a moment after the previous
    head: bool = False  # the first request is a HEAD: no body follows its answer
    live: bool = False  # Hypercorn alone has no live endpoint: compare the two fronts only
    last: bytes = LAST


def case(
    name: str, *writes: bytes, head: bool = False, live: bool = False, last: bytes = LAST
) -> Case:
    return Case(name, writes, head, live, last)


CASES = [
    case("plain board read", BOARD),
    case("pipelined board reads", BOARD * 3),
    case(
        "pipelined board, other route, board",
        BOARD + b"GET /api/actions HTTP/1.1\r\nHost: x\r\n\r\n" + BOARD,
    ),
    case(
        "board read with a body, then a board read",
        b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" + BOARD,
    ),
    case(
        "Content-Length after a bare LF hides a request in the body",
        b"GET /api/leaderboard HTTP/1.1\r\nHost: x\nContent-Length: 42\r\n\r\n" + BOARD,
    ),
    case(
        "Content-Length: 0",
        b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    ),
    case(
        "duplicate Content-Length, equal",
        b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
        b"Content-Length: 0\r\n\r\n" + BOARD,
    ),
    case(
        "duplicate Content-Length, different",
        b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
        b"Content-Length: 5\r\n\r\nhello" + BOARD,
    ),
    case(
        "Transfer-Encoding chunked",
        b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n" + BOARD,
    ),
    case(
        "Transfer-Encoding and Content-Length",
        b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + BOARD,
    ),
    # After these the server closes: nothing may follow them.
    case("HTTP/1.0", b"GET /api/leaderboard HTTP/1.0\r\nHost: x\r\n\r\n", last=b""),
    case("HTTP/1.0 without Host", b"GET /api/leaderboard HTTP/1.0\r\n\r\n", last=b""),
    case(
        "Connection: close",
        b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        last=b"",
    ),
    case("absolute-form target", b"GET http://x/api/leaderboard HTTP/1.1\r\nHost: x\r\n\r\n"),
    case("query string", b"GET /api/leaderboard?limit=3 HTTP/1.1\r\nHost: x\r\n\r\n" + BOARD),
    case("HEAD", b"HEAD /api/leaderboard HTTP/1.1\r\nHost: x\r\n\r\n", head=True),
    case("lowercase method", b"get /api/leaderboard HTTP/1.1\r\nHost: x\r\n\r\n"),
    case("no Host", b"GET /api/leaderboard HTTP/1.1\r\n\r\n" + BOARD),
    case("two Host headers", b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"),
    case("empty Host", b"GET /api/leaderboard HTTP/1.1\r\nHost:\r\n\r\n" + BOARD),
    case("odd Host", b"GET /api/leaderboard HTTP/1.1\r\nHost: a b/c\r\n\r\n" + BOARD),
    case("header without a colon", b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n"),
    case("space before the colon", b"GET /api/leaderboard HTTP/1.1\r\nHost : x\r\n\r\n"),
    case("NUL in a header", b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
    case("bare CR in a header", b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n"),
    case(
        "obs-text in a header",
        b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\nX-A: caf\xc3\xa9\r\n\r\n" + BOARD,
    ),
    case(
        "tabs and trailing spaces",
        b"GET /api/leaderboard HTTP/1.1\r\nHost:\tx \t\r\nX-A: a \t b  \r\n\r\n" + BOARD,
    ),
    case(
        "obs-fold",
        b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n" + BOARD,
    ),
    case("obs-fold first", b"GET /api/leaderboard HTTP/1.1\r\n Host: x\r\n\r\n"),
    case(
        "100 KB of headers",
        b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 90) for i in range(1000))
        + b"\r\n",
    ),
    case(
        "12 KB of headers",
        b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 90) for i in range(120))
        + b"\r\n"
        + BOARD,
    ),
    case(
        "very long request line",
        b"GET /api/leaderboard?" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ),
    case(
        "LF-only line endings",
        BOARD.replace(b"\r\n", b"\n") * 2,
        last=LAST.replace(b"\r\n", b"\n"),
    ),
    case("LF-only after the request line", b"GET /api/leaderboard HTTP/1.1\r\nHost: x\n\n"),
    case(
        "Expect: 100-continue",
        b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n" + BOARD,
    ),
    case(
        "h2c upgrade",
        b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    ),
    case("upgrade to the live path", UPGRADE, live=True),
    case(
        "request split across TCP writes",
        b"GET /api/lead",
        b"erboard HTTP/1.1\r\nHo",
        b"st: x\r\n",
        b"\r\n" + b"GET /api/leaderboard HTTP/1.1\r\n",
        b"Host: x\r\n\r",
        b"\n",
    ),
    # Completions (app/edge/complete_http.py): the token is invalid, so every side answers 401
    # without changing anything; what is compared is where each side finds requests end.
    case("completion", COMPLETE),
    case("pipelined completions and board reads", COMPLETE + BOARD + COMPLETE * 2 + BOARD),
    case("completion split across TCP writes", COMPLETE[:20], COMPLETE[20:60], COMPLETE[60:]),
    case("completion, body in a later write", COMPLETE[:-5], COMPLETE[-5:] + BOARD),
    case(
        "completion whose Content-Length covers the next request",
        COMPLETE.replace(b"Content-Length: 22", b"Content-Length: 64") + BOARD,
    ),
    case(
        "completion with a short body (waits for the rest)",
        COMPLETE.replace(b"Content-Length: 22", b"Content-Length: 30"),
    ),
    case(
        "completion, duplicate Content-Length",
        COMPLETE.replace(b"Content-Length: 22", b"Content-Length: 22\r\nContent-Length: 23"),
    ),
    case(
        "completion, Content-Length and Transfer-Encoding",
        COMPLETE.replace(b"Content-Length: 22", b"Content-Length: 22\r\nTransfer-Encoding: chunked")
        + BOARD,
    ),
    case("completion, bad Content-Length", COMPLETE.replace(b": 22", b": 2x") + BOARD),
    case("completion, bare LF", COMPLETE.replace(b"Host: x\r\n", b"Host: x\n") + BOARD),
    case("completion, obs-fold", COMPLETE.replace(b"Host: x\r\n", b"Host: x\r\n y\r\n") + BOARD),
    case("completion, no Host", COMPLETE.replace(b"Host: x\r\n", b"") + BOARD),
    case("completion over HTTP/1.0", COMPLETE.replace(b"HTTP/1.1", b"HTTP/1.0"), last=b""),
    case(
        "completion, body over the limit",
        COMPLETE.replace(b"Content-Length: 22", b"Content-Length: 20000") + b" " * 19_978,
    ),
    case(
        "completion, Expect: 100-continue",
        COMPLETE.replace(b"Host: x\r\n", b"Host: x\r\nExpect: 100-continue\r\n"),
    ),
    case(
        "completion, 20 KB of headers",
        COMPLETE.replace(b"Host: x\r\n", b"Host: x\r\nX-Pad: " + b"a" * 20_000 + b"\r\n"),
    ),
    case("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64),
    case("incomplete request", b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\n"),
]


@dataclass(frozen=True)
class Servers:
    front: int
    reference: int
    hypercorn: int
    etag: bytes
    fast_answers: list[bytes]


@pytest.fixture
async def servers(
    settings: Settings, catalog_loaded: Any, redis: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Servers]:
    app = create_app(settings)
    await app.startup()
    loop = asyncio.get_running_loop()
    config = hypercorn_config("127.0.0.1", 0)
    fast_answers: list[bytes] = []
    answer = board_http.BoardResponder.answer

    def spy(self: board_http.BoardResponder, head: bytes) -> bytes | None:
        response = answer(self, head)
        if response is not None:
            fast_answers.append(head)
        return response

    monkeypatch.setattr(board_http.BoardResponder, "answer", spy)
    front, front_bridge = front_factory(app, config)
    reference, reference_bridge = front_factory(app, config, board_fast_path=False)
    context, tasks = WorkerContext(None), set()

    async def hypercorn_alone(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        tasks.add(task)
        await TCPServer(ASGIWrapper(app), loop, config, context, {}, reader, writer)

    listening = [
        await loop.create_server(front, "127.0.0.1", 0),
        await loop.create_server(reference, "127.0.0.1", 0),
        await asyncio.start_server(hypercorn_alone, "127.0.0.1", 0),
    ]
    ports = [server.sockets[0].getsockname()[1] for server in listening]
    try:
        # A cold node sends the first read to Quart, which seeds the board for the fast path.
        warm = await conversation(ports[0], case("warm", BOARD))
        assert warm == ([200, 200], "closed")
        board = app.extensions["leaderboard"].board.current
        assert board is not None
        yield Servers(*ports, board.etag.encode(), fast_answers)
    finally:
        for server in listening:
            server.close()
        await front_bridge.shutdown(0.5)
        await reference_bridge.shutdown(0.5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await app.shutdown()


Outcome = tuple[list[int | str], str]  # (status codes, how the connection ended)


async def conversation(port: int, sent: Case, etag: bytes = b"") -> Outcome:
    """Send the case's bytes (``ETAG`` in them is the board's current ETag) and then a last
    request asking to close; read until the server closes. The last answer shows whether
    both sides still agree where requests begin."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i, chunk in enumerate(sent.writes):
            if i:
                # Shaping the input, not waiting for an outcome: each write must reach the
                # server as its own segment, which is the point of the case.
                await asyncio.sleep(0.05)
            last = i == len(sent.writes) - 1
            writer.write((chunk + sent.last if last else chunk).replace(b"ETAG", etag))
            await writer.drain()
        received, ending = b"", "closed"
        try:
            async with asyncio.timeout(5):
                while chunk := await reader.read(65536):
                    received += chunk
        except TimeoutError:
            ending = "still open"
        except ConnectionResetError:
            ending = "reset"
        return statuses(received, sent.head), ending
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def statuses(stream: bytes, head: bool) -> list[int | str]:
    """The status codes of the HTTP/1.1 responses in ``stream``, in order (with ``head``,
    the first is the answer to a HEAD request: no body follows it)."""
    found: list[int | str] = []
    while stream:
        end = stream.find(b"\r\n\r\n")
        if end < 0 or not stream.startswith(b"HTTP/1."):
            found.append(f"unparsed {stream[:40]!r}")
            break
        lines = stream[:end].split(b"\r\n")
        status = int(lines[0].split()[1])
        found.append(status)
        if status == 101:
            break  # the rest is the upgraded protocol
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        stream = stream[end + 4 :]
        if (head and len(found) == 1) or status in (204, 304) or status < 200:
            continue
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            while True:
                size_end = stream.find(b"\r\n")
                size = int(stream[:size_end].split(b";")[0], 16)
                stream = stream[size_end + 2 + size + 2 :]
                if size == 0:
                    break
        else:
            stream = stream[int(headers.get(b"content-length", b"0")) :]
    return found


async def test_the_front_answers_as_hypercorn_does(servers: Servers) -> None:
    # One app for every case (starting one per case would cost more than the cases).
    differences = []
    for sent in CASES:
        outcomes = {
            "front": await conversation(servers.front, sent, servers.etag),
            "reference": await conversation(servers.reference, sent, servers.etag),
        }
        if not sent.live:
            outcomes["hypercorn"] = await conversation(servers.hypercorn, sent, servers.etag)
        if len(set(map(repr, outcomes.values()))) > 1:
            differences.append(f"{sent.name}: {outcomes}")
    assert not differences, "\n".join(differences)


async def test_plain_reads_are_answered_by_the_fast_path(servers: Servers) -> None:
    # The differential test above would pass with the fast path off: check it is on.
    servers.fast_answers.clear()
    outcome = await conversation(
        servers.front, case("two plain reads", BOARD + BOARD.replace(b"x", b"localhost:3000"))
    )
    assert outcome == ([200, 200, 200], "closed")
    assert len(servers.fast_answers) == 2
