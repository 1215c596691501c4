"""The live endpoint against clients that do not follow the script, over raw sockets: bytes sent
before the upgrade is answered, upgrade requests with a body, text that is not UTF-8. Each must
get a proper answer, and none may cost the server an ERROR line (unauthenticated clients could
otherwise flood the log)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.server_process import ServerProcess

UPGRADE = (
    b"GET /api/leaderboard/live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
)
NEXT_REQUEST = b"GET /api/leaderboard HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def server(
    service_env: dict[str, str], tmp_path: Path, catalog_loaded: Any, redis: Any
) -> Iterator[ServerProcess]:
    env = {**service_env, "WS_CONNECTS_PER_IP_PER_MINUTE": "100000"}
    with ServerProcess(env, tmp_path) as process:
        yield process


def errors_logged(server: ServerProcess) -> list[str]:
    return [
        line
        for line in server.log().splitlines()
        if '"level":"error"' in line or "Traceback" in line
    ]


def client_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked frame, as a client must send it (RFC 6455 §5.3)."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    first = (0x80 if fin else 0) | opcode
    if len(payload) < 126:
        return bytes([first, 0x80 | len(payload)]) + mask + masked
    return bytes([first, 0x80 | 126]) + struct.pack("!H", len(payload)) + mask + masked


async def exchange(
    port: int, data: bytes, until: bytes | None = None, then: bytes = b""
) -> tuple[bytes, str]:
    """Send ``data`` in one write (and ``then`` once the HTTP answer is in); what came back,
    and how it ended: "closed" (FIN), "reset", "seen" (``until`` arrived; we stop there) or
    "still open" after 5 s."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received, ending = b"", "closed"
    try:
        writer.write(data)
        async with asyncio.timeout(5):
            while chunk := await reader.read(65536):
                received += chunk
                if then and b"\r\n\r\n" in received:
                    writer.write(then)
                    then = b""
                if until is not None and until in received:
                    ending = "seen"
                    break
    except TimeoutError:
        ending = "still open"
    except ConnectionResetError:
        ending = "reset"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return received, ending


def server_frames(stream: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of the unmasked frames in ``stream``, after the HTTP response."""
    stream = stream.partition(b"\r\n\r\n")[2]
    found = []
    while len(stream) >= 2:
        opcode, length = stream[0] & 0x0F, stream[1] & 0x7F
        offset = 2
        if length == 126:
            (length,) = struct.unpack("!H", stream[2:4])
            offset = 4
        found.append((opcode, stream[offset : offset + length]))
        stream = stream[offset + length :]
    return found


def close_code(frames: list[tuple[int, bytes]]) -> int | None:
    for opcode, payload in frames:
        if opcode == 0x8:
            return int(struct.unpack("!H", payload[:2])[0])
    return None


async def test_a_refused_upgrade_with_pipelined_bytes_gets_its_answer_and_a_clean_close(
    server: ServerProcess,
) -> None:
    refused = UPGRADE.replace(b"Sec-WebSocket-Key", b"X-Key") + b"\r\n"  # no key: 400
    for after in (NEXT_REQUEST, client_frame(0x1, b'{"type":"PING"}'), b"\x81\x85junk!"):
        received, ending = await exchange(server.port, refused + after)
        assert received.startswith(b"HTTP/1.1 400 "), received[:80]
        assert ending == "closed"  # a FIN after the answer, not a reset that could lose it
    assert errors_logged(server) == []


async def test_a_node_refusal_with_pipelined_bytes_is_delivered(
    service_env: dict[str, str], tmp_path: Path, catalog_loaded: Any, redis: Any
) -> None:
    env = {**service_env, "WS_CONNECTS_PER_IP_PER_MINUTE": "1"}
    with ServerProcess(env, tmp_path) as server:
        first, _ = await exchange(server.port, UPGRADE + b"\r\n", until=b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 101 ")
        received, ending = await exchange(server.port, UPGRADE + b"\r\n" + NEXT_REQUEST)
        assert received.startswith(b"HTTP/1.1 429 "), received[:80]
        assert b"Retry-After: " in received
        assert ending == "closed"
        assert errors_logged(server) == []


async def test_an_upgrade_with_a_body_or_transfer_encoding_gets_400(
    server: ServerProcess,
) -> None:
    for extra in (
        b"Content-Length: 5\r\n\r\nhello",
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ):
        received, ending = await exchange(server.port, UPGRADE + extra)
        assert received.startswith(b"HTTP/1.1 400 "), (extra, received[:80])
        assert ending == "closed"
    # An empty body is no body: the upgrade goes ahead.
    received, _ = await exchange(
        server.port, UPGRADE + b"Content-Length: 0\r\n\r\n", until=b"\r\n\r\n"
    )
    assert received.startswith(b"HTTP/1.1 101 ")
    assert errors_logged(server) == []


async def test_frames_sent_with_the_upgrade_are_answered_after_the_101(
    server: ServerProcess,
) -> None:
    ping = client_frame(0x1, b'{"type":"PING"}')
    received, _ = await exchange(server.port, UPGRADE + b"\r\n" + ping, until=b"PONG")
    assert received.startswith(b"HTTP/1.1 101 ")
    assert server_frames(received) == [(0x1, b'{"type":"PONG"}')]

    # Not a frame at all after a valid upgrade: accepted, then failed as a protocol error.
    received, _ = await exchange(server.port, UPGRADE + b"\r\n" + NEXT_REQUEST, until=b"\x88")
    assert received.startswith(b"HTTP/1.1 101 ")
    assert close_code(server_frames(received + b"\x00" * 4)) == 1002
    assert errors_logged(server) == []


async def test_a_text_message_that_is_not_utf8_closes_with_1007(server: ServerProcess) -> None:
    for message in (
        [client_frame(0x1, b'{"type":"\xff"}')],
        [client_frame(0x1, b"\xed\xa0\x80")],  # an encoded surrogate is not UTF-8 either
        [client_frame(0x1, b'{"type":"\xe2', fin=False), client_frame(0x0, b'\x82"}')],
    ):
        received, _ = await exchange(
            server.port, UPGRADE + b"\r\n", until=b"\x88", then=b"".join(message)
        )
        assert received.startswith(b"HTTP/1.1 101 ")
        assert close_code(server_frames(received + b"\x00" * 4)) == 1007, received

    # A character split across two fragments is still UTF-8: an ordinary answer.
    split = [
        client_frame(0x1, b'{"type":"\xe2\x82', fin=False),
        client_frame(0x0, b'\xac"}'),
    ]
    received, _ = await exchange(server.port, UPGRADE + b"\r\n", until=b"}", then=b"".join(split))
    error = orjson.loads(server_frames(received)[0][1])
    assert error["code"] == "NOT_AUTHENTICATED"
    assert errors_logged(server) == []
