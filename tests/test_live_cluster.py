"""The live path across two real server processes sharing PostgreSQL and Redis: updates cross
nodes, the per-user limit holds across them, slow clients hurt nobody, restarts and a Redis
that lost its data are survived."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from tests.support.live_client import LiveClient, live_client, users_of
from tests.support.server_process import ServerProcess
from tests.test_live_protocol import LIVE_KNOBS, score


@pytest.fixture
def env(service_env: dict[str, str]) -> dict[str, str]:
    return {**service_env, **LIVE_KNOBS}


@pytest.fixture
def nodes(
    env: dict[str, str], tmp_path: Path, catalog_loaded: Any, redis: Any
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with ServerProcess(env, tmp_path) as a, ServerProcess(env, tmp_path) as b:
        yield a, b


async def test_an_update_committed_on_node_a_reaches_clients_of_node_b(
    nodes: tuple[ServerProcess, ServerProcess], make_player: Any
) -> None:
    a, b = nodes
    ada, bob = await make_player("ada"), await make_player("bob")
    async with (
        live_client(b.ws_url, ada.token) as on_b,
        live_client(a.ws_url, bob.token) as on_a,
    ):
        await on_b.next_update()
        await on_a.next_update()
        await score(a.base_url, bob, "boss")
        for client in (on_b, on_a):
            # (A node that just started may first re-send the empty board under Redis's epoch.)
            await client.update_matching(lambda m: users_of(m) == [("bob", 100)])


async def test_a_third_connection_closes_the_oldest_even_on_another_node(
    nodes: tuple[ServerProcess, ServerProcess], make_player: Any
) -> None:
    a, b = nodes
    ada = await make_player("ada")
    async with contextlib.AsyncExitStack() as stack:

        async def connect(node: ServerProcess) -> LiveClient:
            client = await stack.enter_async_context(live_client(node.ws_url, ada.token))
            await client.next_update()
            return client

        first = await connect(a)
        second = await connect(b)
        third = await connect(b)  # the oldest (first) lives on node A
        assert await first.close_code() == 4005
        fourth = await connect(a)  # now the oldest (second) is on node B
        assert await second.close_code() == 4005
        # The two newest stay and keep receiving.
        bob = await make_player("bob")
        await score(b.base_url, bob, "boss")
        for client in (third, fourth):
            await client.update_matching(lambda m: users_of(m) == [("bob", 100)])


def _filler_message(namespace_version: int, epoch: str) -> bytes:
    """A LEADERBOARD_UPDATE of ~60 KB, as the apply script would publish (long names), so a
    client that never reads fills its socket buffers after a few dozen."""
    users = [
        {"userId": f"{i:032x}", "username": "n" * 6000, "score": 1000 - i, "rank": i + 1}
        for i in range(10)
    ]
    return orjson.dumps(
        {
            "type": "LEADERBOARD_UPDATE",
            "epoch": epoch,
            "version": namespace_version,
            "data": {"users": users, "updatedAt": "2030-01-01T00:00:00.000Z"},
        }
    )


async def test_a_client_that_never_reads_does_not_delay_200_others(
    env: dict[str, str],
    tmp_path: Path,
    catalog_loaded: Any,
    redis: Redis,
    namespace: str,
    make_player: Any,
) -> None:
    players = [await make_player(f"player{i}") for i in range(101)]
    slow_env = {**env, "WS_SEND_TIMEOUT_SECONDS": "1", "WS_MAX_FRAME_BYTES": "4096"}
    with ServerProcess(slow_env, tmp_path) as server:
        # The slow client: a raw socket that completes the handshake, then never reads.
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", server.port))
        slow.sendall(
            b"GET /api/leaderboard/live?token=" + players[100].token.encode() + b" HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(live_client(server.ws_url, p.token))
                for p in players[:100]
                for _ in range(2)  # 200 connections: two per user (the limit)
            ]
            await asyncio.gather(*(c.next_update() for c in clients))
            epoch = "9" * 20  # newer than any real epoch, so every node takes these
            channel = f"{namespace}:updates"
            last = 150
            for version in range(1, last + 1):
                await redis.publish(channel, _filler_message(version, epoch))
            # Every reading client gets the newest message (older ones may be skipped). Raw
            # bytes, not parsed: the readers must stay fast readers in a busy test process.
            marker = f'"version":{last},'.encode()

            async def reads_the_last(client: LiveClient) -> None:
                while marker not in (await client.ws.recv(decode=False))[:120]:
                    pass

            await asyncio.wait_for(asyncio.gather(*(reads_the_last(c) for c in clients)), 30)
            # The slow client was closed (send timeout) instead of holding anyone up. Its
            # TCP state shows it without reading (reading would unblock it).
            tcp_close, tcp_close_wait = 7, 8

            async def slow_is_dropped() -> None:
                while slow.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] not in (
                    tcp_close,
                    tcp_close_wait,
                ):
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(slow_is_dropped(), 20)
        slow.close()


async def test_a_restarted_node_s_clients_reconnect_and_get_the_full_snapshot(
    env: dict[str, str], tmp_path: Path, catalog_loaded: Any, redis: Any, make_player: Any
) -> None:
    ada, bob = await make_player("ada"), await make_player("bob")
    with ServerProcess(env, tmp_path) as a, ServerProcess(env, tmp_path) as b:
        await score(b.base_url, bob, "boss")
        async with live_client(a.ws_url, ada.token) as client:
            await client.next_update()
            stopping = asyncio.get_running_loop().run_in_executor(None, a.stop)
            assert await client.close_code() == 1001
            assert await stopping == 0
        # Changes made while node A is down, through node B.
        await score(b.base_url, ada, "level_a")
        with ServerProcess(env, tmp_path, port=a.port) as restarted:
            async with live_client(restarted.ws_url, ada.token) as client:
                snapshot = await client.next_update()
                assert users_of(snapshot) == [("bob", 100), ("ada", 50)]


async def test_after_redis_loses_its_data_clients_still_receive_every_change(
    env: dict[str, str],
    tmp_path: Path,
    catalog_loaded: Any,
    make_player: Any,
) -> None:
    from app.dev.servers import EmbeddedRedis

    # A private Redis, so FLUSHALL touches nobody else's data.
    private = EmbeddedRedis(tmp_path / "redis")
    private.start()
    try:
        env = {**env, "REDIS_URL": private.url}
        ada, bob, cy = [await make_player(n) for n in ("ada", "bob", "cyd")]
        with ServerProcess(env, tmp_path) as a, ServerProcess(env, tmp_path) as b:
            await score(a.base_url, ada, "level_a")
            async with live_client(b.ws_url, ada.token) as client:
                before = await client.update_matching(lambda m: users_of(m) == [("ada", 50)])
                async with Redis.from_url(private.url) as raw:
                    await raw.flushall()
                await score(a.base_url, bob, "boss")
                after = await client.update_matching(
                    lambda m: users_of(m) == [("bob", 100), ("ada", 50)]
                )
                assert int(after["epoch"]) > int(before["epoch"])  # a new epoch
                await score(b.base_url, cy, "quiz_a")
                latest = await client.update_matching(lambda m: len(m["data"]["users"]) == 3)
                assert users_of(latest) == [("bob", 100), ("ada", 50), ("cyd", 10)]
                assert (latest["epoch"], latest["version"]) > (after["epoch"], after["version"])
    finally:
        private.stop()
