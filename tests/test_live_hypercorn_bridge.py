"""The Hypercorn internals app/edge/hypercorn_bridge.py relies on. If a Hypercorn upgrade
changes them, this fails loudly here rather than quietly in production."""

from __future__ import annotations

import asyncio
import inspect

from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config


def test_tcp_server_takes_what_the_bridge_passes() -> None:
    parameters = list(inspect.signature(TCPServer.__init__).parameters)
    assert parameters == ["self", "app", "loop", "config", "context", "state", "reader", "writer"]
    assert inspect.iscoroutinefunction(TCPServer.run)


def test_worker_context_and_wrapper_are_as_expected() -> None:
    context = WorkerContext(None)
    assert hasattr(context.terminated, "set") and not context.terminated.is_set()
    assert list(inspect.signature(ASGIWrapper.__init__).parameters) == ["self", "app"]
    assert Config().create_sockets  # the one public piece: binding the listening sockets


def test_asyncio_streams_can_adopt_a_transport() -> None:
    # The bridge moves an accepted transport onto a StreamReaderProtocol with set_protocol.
    assert "client_connected_cb" in inspect.signature(asyncio.StreamReaderProtocol).parameters
    assert hasattr(asyncio.Transport, "set_protocol")
