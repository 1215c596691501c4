"""``leaderboard serve``: the HTTP API and the live endpoint on one port, in N processes.

Each process (a node) accepts on the shared listening socket itself: the front dispatcher
sends live WebSocket upgrades to the live node and everything else to Hypercorn. Why not a
Quart websocket route: one broadcast to 10,000 clients took ~420 ms through per-client ASGI
sends, against tens of ms writing one pre-encoded frame per socket (see perf/README.md).

Shutdown (SIGTERM or SIGINT): stop accepting, close every live socket with 1001, let HTTP
requests in flight finish (up to the graceful timeout), then stop the app's services.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import sys
from multiprocessing.connection import wait
from multiprocessing.synchronize import Event as EventType
from typing import TYPE_CHECKING, Any

from hypercorn.config import Config, Sockets
from quart import Quart

from app.edge.board_http import BoardResponder, served_metrics
from app.edge.front import FrontProtocol, Handoff
from app.edge.hypercorn_bridge import HypercornBridge

if TYPE_CHECKING:
    from app.core.settings import Settings

GRACEFUL_SECONDS = 10.0
# How long a new connection may take to send its request line.
REQUEST_LINE_SECONDS = 10.0


def hypercorn_config(host: str, port: int) -> Config:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.graceful_timeout = GRACEFUL_SECONDS
    config.accesslog = None
    # Hypercorn's own lines go through our logging setup (JSON in production), once.
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


def run(config: Config, workers: int, settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT; the exit code is 0 after a clean shutdown."""
    sockets = config.create_sockets()
    try:
        if workers <= 1:
            _worker(config, sockets, None, settings)
            return 0
        return _supervise(config, sockets, workers, settings)
    finally:
        for sock in sockets.insecure_sockets:
            sock.close()


def _supervise(config: Config, sockets: Sockets, workers: int, settings: Settings) -> int:
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    # Children start with SIGINT ignored: a Ctrl-C reaches the whole group, and the
    # supervisor alone decides (through ``stop``) that they shut down.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    processes = [
        ctx.Process(target=_worker, args=(config, sockets, stop, settings), name=f"leaderboard-{i}")
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    signal.signal(signal.SIGINT, previous)

    def _stop(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # Any worker ending (a crash, or the signal) ends them all; an orchestrator restarts us.
    wait([p.sentinel for p in processes])
    stop.set()
    codes = []
    for process in processes:
        process.join(GRACEFUL_SECONDS + 5)
        if process.exitcode is None:
            process.terminate()
            process.join()
        codes.append(process.exitcode or 0)
    return next((code for code in codes if code != 0), 0)


def _worker(config: Config, sockets: Sockets, stop: EventType | None, settings: Settings) -> None:
    # The settings the supervisor parsed, handed over (pickled): a worker never re-reads the
    # environment.
    from app.http.app import app_for_serving

    app = app_for_serving(settings)
    if sys.platform != "win32":
        import uvloop

        uvloop.run(serve_node(app, config, sockets, stop))
    else:
        asyncio.run(serve_node(app, config, sockets, stop))


async def serve_node(
    app: Quart, config: Config, sockets: Sockets, stop: EventType | None = None
) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signame in ("SIGTERM", "SIGINT"):
        with contextlib.suppress(NotImplementedError, ValueError):
            loop.add_signal_handler(getattr(signal, signame), stopping.set)

    await app.startup()
    servers: list[asyncio.Server] = []
    try:
        services = app.extensions["leaderboard"]
        live = services.live
        bridge = HypercornBridge(app, config)
        board = BoardResponder(services.board, served_metrics(services.metrics))
        handoff = Handoff(bridge.adopt, live.protocol, REQUEST_LINE_SECONDS, board)
        for sock in sockets.insecure_sockets:
            server = await loop.create_server(
                lambda: FrontProtocol(handoff), sock=sock, backlog=config.backlog
            )
            servers.append(server)
            host, port = sock.getsockname()[:2]
            await config.log.info(f"Running on http://{host}:{port} (CTRL + C to quit)")
        await _until(stopping, stop)
        for server in servers:
            server.close()
        await live.close()
        await bridge.shutdown(config.graceful_timeout)
    finally:
        await app.shutdown()


async def _until(stopping: asyncio.Event, stop: EventType | None) -> None:
    """Wait for this process's signal, or the supervisor's stop event."""
    while not stopping.is_set():
        if stop is not None and stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.1 if stop is not None else None):
                await stopping.wait()
