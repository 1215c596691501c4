"""``leaderboard serve``: the HTTP API and the live endpoint on one port, in N processes.

Each process (a node) accepts on the shared listening socket itself: the front dispatcher
sends live WebSocket upgrades to the live node and everything else to Hypercorn. Why not a
Quart websocket route: one broadcast to 10,000 clients took ~420 ms through per-client ASGI
sends, against tens of ms writing one pre-encoded frame per socket (see perf/README.md).

With ``--workers N`` a supervisor (supervisor.py) keeps N such processes running.

Shutdown (SIGTERM or SIGINT): stop accepting, close every live socket with 1001, let HTTP
requests in flight finish (up to the graceful timeout), then stop the app's services.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from hypercorn.config import Config, Sockets
from quart import Quart

from app.core.settings import Settings
from app.edge.board_http import BoardResponder, served_metrics
from app.edge.complete_http import CompleteResponder
from app.edge.front import FrontProtocol, Handoff
from app.edge.hypercorn_bridge import HypercornBridge
from app.edge.supervisor import Supervisor, die_with_parent, ignore_interrupts, parent_alive
from app.obs.logging_setup import configure_logging

GRACEFUL_SECONDS = 10.0
# How long a new connection may take to send its request line.
REQUEST_LINE_SECONDS = 10.0
# How often a worker checks that its supervisor is still there (besides the kernel's signal).
PARENT_CHECK_SECONDS = 0.5


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
    configure_logging(json=not settings.dev_mode)  # the supervisor logs restarts
    ctx = multiprocessing.get_context("spawn")
    parent = os.getpid()

    def spawn(index: int) -> BaseProcess:
        name = f"leaderboard-{index}"
        return ctx.Process(target=_worker, args=(config, sockets, parent, settings), name=name)

    # The sockets stay open here for the whole run: a restarted worker inherits them.
    return Supervisor(spawn, workers, grace=GRACEFUL_SECONDS + 5).run()


def _worker(config: Config, sockets: Sockets, parent: int | None, settings: Settings) -> None:
    if parent is not None:
        die_with_parent(parent)  # first: even a worker stuck starting must not outlive us
        ignore_interrupts()
    # The settings the supervisor parsed, handed over (pickled): a worker never re-reads the
    # environment.
    from app.http.app import app_for_serving

    app = app_for_serving(settings)
    if sys.platform != "win32":
        import uvloop

        uvloop.run(serve_node(app, config, sockets, parent))
    else:
        asyncio.run(serve_node(app, config, sockets, parent))


class FrontShutdown:
    """What a node drains on shutdown: completions the front answers, and Hypercorn's."""

    def __init__(self, handoff: Handoff, bridge: HypercornBridge) -> None:
        self._handoff = handoff
        self._bridge = bridge

    async def shutdown(self, grace: float) -> None:
        await asyncio.gather(self._handoff.drain(grace), self._bridge.shutdown(grace))


def front_factory(
    app: Quart,
    config: Config,
    board_fast_path: bool = True,
    complete_fast_path: bool | None = None,
) -> tuple[Callable[[], FrontProtocol], FrontShutdown]:
    """The protocol factory for this node's listening sockets (the app must have started),
    and what to drain on shutdown. Without the fast paths every request but a live upgrade
    goes through Hypercorn (the reference the differential tests compare with);
    ``complete_fast_path`` follows ``board_fast_path`` and the settings unless given."""
    services = app.extensions["leaderboard"]
    bridge = HypercornBridge(app, config)
    board = (
        BoardResponder(services.board, served_metrics(services.metrics))
        if board_fast_path
        else None
    )
    if complete_fast_path is None:
        complete_fast_path = board_fast_path and services.settings.complete_fast_path
    complete = CompleteResponder(services, app.config) if complete_fast_path else None
    handoff = Handoff(bridge.adopt, services.live.protocol, REQUEST_LINE_SECONDS, board, complete)
    return (lambda: FrontProtocol(handoff)), FrontShutdown(handoff, bridge)


async def serve_node(
    app: Quart, config: Config, sockets: Sockets, parent: int | None = None
) -> None:
    """Serve until SIGTERM (or SIGINT when not supervised), or until the supervisor
    ``parent`` is gone."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM,) if parent is not None else (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, ValueError):
            loop.add_signal_handler(sig, stopping.set)

    await app.startup()
    servers: list[asyncio.Server] = []
    watcher = asyncio.create_task(_watch_parent(parent, stopping)) if parent else None
    try:
        factory, bridge = front_factory(app, config)
        for sock in sockets.insecure_sockets:
            server = await loop.create_server(factory, sock=sock, backlog=config.backlog)
            servers.append(server)
            host, port = sock.getsockname()[:2]
            await config.log.info(f"Running on http://{host}:{port} (CTRL + C to quit)")
        await stopping.wait()
        for server in servers:
            server.close()
        await app.extensions["leaderboard"].live.close()
        await bridge.shutdown(config.graceful_timeout)
    finally:
        if watcher is not None:
            watcher.cancel()
        await app.shutdown()


async def _watch_parent(parent: int, stopping: asyncio.Event) -> None:
    """Where the kernel cannot signal us when the supervisor dies (not Linux), notice it:
    there is nothing to wait on for another process's end but its pid changing."""
    while parent_alive(parent):  # noqa: ASYNC110
        await asyncio.sleep(PARENT_CHECK_SECONDS)
    stopping.set()
