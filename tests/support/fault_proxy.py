"""A TCP proxy that makes the server behind it slow or frozen, without touching the server.

- ``reply_delay`` / ``request_delay``: every chunk going to the client (or to the server) is
  held this many seconds, in order: a slow server or network.
- ``pause()`` / ``resume()``: hold every byte in both directions, as a server stopped with
  SIGSTOP would (its kernel still accepts connections and buffers what clients send).
  What a client sent before giving up is still delivered on ``resume()``, then the
  connection is closed: exactly what a frozen server finds in its socket buffers when it wakes.
- ``pause_after_reply(marker)``: deliver the next server chunk containing ``marker``, then
  pause: the server froze right after answering that request.
- ``cut()`` / ``restore()``: drop every connection and refuse new ones, then accept again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit


@dataclass(eq=False)  # identity: pumps live in a set
class _Pump:
    """One direction of one connection: a reader fills the queue, a sender drains it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    to_client: bool
    # (when due, data); None: the peer closed, close this side once the rest is delivered
    queue: deque[tuple[float, bytes | None]] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class FaultProxy:
    @classmethod
    async def in_front_of(cls, url: str, default_port: int) -> FaultProxy:
        parts = urlsplit(url)
        proxy = cls(parts.hostname or "127.0.0.1", parts.port or default_port)
        await proxy.start()
        return proxy

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._pumps: set[_Pump] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._pause_marker: bytes | None = None
        self.reply_delay = 0.0
        self.request_delay = 0.0
        self.port = 0

    # -- control --------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def pause(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._pause_marker = None
        self._flowing.set()

    def pause_after_reply(self, marker: bytes) -> None:
        self._pause_marker = marker

    def url(self, original: str) -> str:
        """``original`` (a postgresql:// or redis:// URL) pointed at this proxy instead."""
        parts = urlsplit(original)
        userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{self.port}"))

    @property
    def paused(self) -> bool:
        return not self._flowing.is_set()

    @property
    def pending(self) -> int:
        """Bytes read from one side and not yet delivered to the other."""
        return sum(len(data or b"") for pump in self._pumps for _, data in pump.queue)

    @property
    def idle(self) -> bool:
        """Every connection through the proxy has ended, each side having been handed all that
        the other sent (so the server has run every command a client sent before leaving)."""
        return not self._pumps

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._pumps.clear()

    async def restore(self) -> None:
        await self.start()

    # -- plumbing -------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        for pump in (_Pump(reader, up_writer, False), _Pump(up_reader, writer, True)):
            self._pumps.add(pump)
            self._spawn(self._read(pump))
            self._spawn(self._send(pump))

    def _spawn(self, coroutine: Coroutine[None, None, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self, pump: _Pump) -> None:
        loop = asyncio.get_running_loop()
        try:
            while data := await pump.reader.read(65536):
                delay = self.reply_delay if pump.to_client else self.request_delay
                pump.queue.append((loop.time() + delay, data))
                pump.ready.set()
        except OSError:
            pass
        finally:
            pump.queue.append((loop.time(), None))
            pump.ready.set()

    async def _send(self, pump: _Pump) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                while not pump.queue:
                    pump.ready.clear()
                    await pump.ready.wait()
                due, data = pump.queue[0]
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())  # the injected latency itself
                await self._flowing.wait()
                pump.queue.popleft()
                if data is None:
                    return
                pump.writer.write(data)
                with contextlib.suppress(OSError):
                    await pump.writer.drain()
                if pump.to_client and self._pause_marker and self._pause_marker in data:
                    self._pause_marker = None
                    self.pause()
        finally:
            self._pumps.discard(pump)
            with contextlib.suppress(Exception):
                pump.writer.close()
