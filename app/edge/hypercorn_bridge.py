"""The one place that uses Hypercorn internals: handing an accepted connection to Hypercorn.

Hypercorn offers no public hook for "serve this already-accepted connection", which the front
dispatcher (front.py) needs so that the HTTP API and the live endpoint share one port. This
module does what ``hypercorn.asyncio.run.worker_serve`` does per connection (wrap the transport
in asyncio streams, run ``TCPServer``), and nothing else. tests/test_live_hypercorn_bridge.py
checks the signatures it relies on, so a Hypercorn upgrade that changes them fails loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config

# Hypercorn's own read size and stream limit.
_STREAM_LIMIT = 2**16


class HypercornBridge:
    def __init__(self, asgi_app: Any, config: Config) -> None:
        self._app = ASGIWrapper(asgi_app)
        self._config = config
        self._context = WorkerContext(config.max_requests)
        self._state: dict[str, Any] = {}  # ASGI lifespan state (the app keeps none)
        self._tasks: set[asyncio.Task[None]] = set()

    def adopt(self, transport: asyncio.Transport, head: bytes) -> None:
        """Serve ``transport`` with Hypercorn, as if it had accepted it; ``head`` is what
        was already read from it."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_STREAM_LIMIT, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, self._serve, loop=loop)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if head:
            protocol.data_received(head)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        loop = asyncio.get_running_loop()
        await TCPServer(self._app, loop, self._config, self._context, self._state, reader, writer)

    async def shutdown(self, grace: float) -> None:
        """Finish requests in flight (up to ``grace`` seconds), then drop the rest."""
        await self._context.terminated.set()
        tasks = set(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
