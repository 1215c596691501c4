"""The live ceiling: a bare fan-out server. Accepts WebSocket upgrades (no auth, no registry),
sends a first frame, and on SIGUSR1 writes one pre-encoded frame of the same size as the
service's message to every socket. W processes share one listening socket, as the service's
workers do.

    python -m perf.fanout PORT WORKERS MESSAGE_FILE [http]

With ``http`` it is the read ceiling instead: every HTTP request answered with the same
prebuilt response carrying MESSAGE_FILE as its body.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import signal
import socket
import sys

from app.live.frames import text_frame

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B85"
_KEY = re.compile(rb"sec-websocket-key:\s*(\S+)", re.IGNORECASE)


class Fanout:
    def __init__(self, template: bytes) -> None:
        self.template = template
        self.version = 0
        self.transports: list[asyncio.Transport] = []

    def frame(self) -> bytes:
        return text_frame(
            self.template.replace(b'"version":0,', f'"version":{self.version},'.encode())
        )

    def broadcast(self) -> None:
        self.version += 1
        frame = self.frame()
        for transport in self.transports:
            if not transport.is_closing():
                transport.write(frame)


class ConstantHttp(asyncio.Protocol):
    """The read ceiling: any request answered with the same prebuilt response."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(self.response * data.count(b"\r\n\r\n"))


class Upgrade(asyncio.Protocol):
    def __init__(self, fanout: Fanout) -> None:
        self.fanout = fanout
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.buf is None:
            return  # client frames (PONG) are ignored
        self.buf += data
        if b"\r\n\r\n" not in self.buf:
            return
        match = _KEY.search(self.buf)
        assert match and self.transport is not None
        accept = base64.b64encode(hashlib.sha1(match.group(1) + _GUID).digest())
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + self.fanout.frame()
        )
        self.fanout.transports.append(self.transport)
        self.buf = None  # type: ignore[assignment]


async def serve(sock: socket.socket, template: bytes, http: bool) -> None:
    loop = asyncio.get_running_loop()
    fanout = Fanout(template)
    loop.add_signal_handler(signal.SIGUSR1, fanout.broadcast)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    response = (
        b"HTTP/1.1 200 \r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(template)).encode()
        + b"\r\n\r\n"
        + template
    )
    server = await loop.create_server(
        (lambda: ConstantHttp(response)) if http else (lambda: Upgrade(fanout)),
        sock=sock,
        backlog=4096,
    )
    await stop.wait()
    server.close()


def main() -> int:
    import uvloop

    port, workers, message_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    http = sys.argv[4:] == ["http"]
    template = open(message_file, "rb").read()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(4096)
    sock.setblocking(False)
    children = []
    for _ in range(workers - 1):
        pid = os.fork()
        if pid == 0:
            uvloop.run(serve(sock, template, http))
            os._exit(0)
        children.append(pid)
    uvloop.run(serve(sock, template, http))
    for pid in children:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
