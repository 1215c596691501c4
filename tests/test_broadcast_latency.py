"""leaderboard_broadcast_latency_seconds: from the commit that changed the top 10 to its frame
written to this node's WebSocket clients (the SPEC's "WebSocket broadcast < 100 ms")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from app.core.board import message_from_users, snapshot_from_message
from app.core.ranking import iso
from app.obs.metrics import Metrics
from tests.support.live_client import live_client
from tests.support.server_process import ServerProcess
from tests.test_live_protocol import LIVE_KNOBS, score
from tests.test_metrics import sample

NAME = "leaderboard_broadcast_latency_seconds"


def text(metrics: Metrics) -> str:
    return metrics.exposition().decode()


def test_the_time_since_the_commit_lands_in_its_bucket() -> None:
    metrics = Metrics()
    committed = datetime.now(UTC) - timedelta(milliseconds=300)
    snapshot = snapshot_from_message(message_from_users([], iso(committed)))
    metrics.observe_broadcast(snapshot)
    exposed = text(metrics)
    assert sample(exposed, NAME + "_count") == 1
    assert sample(exposed, NAME + "_bucket", le="0.25") == 0
    assert sample(exposed, NAME + "_bucket", le="0.5") == 1
    assert 0.3 <= sample(exposed, NAME + "_sum") < 5


def test_a_board_without_a_commit_time_and_a_clock_behind_are_harmless() -> None:
    metrics = Metrics()
    metrics.observe_broadcast(snapshot_from_message(message_from_users([], None)))
    assert sample(text(metrics), NAME + "_count") == 0
    ahead = datetime.now(UTC) + timedelta(seconds=2)  # the database's clock runs ahead
    metrics.observe_broadcast(snapshot_from_message(message_from_users([], iso(ahead))))
    exposed = text(metrics)
    assert sample(exposed, NAME + "_count") == 1 and sample(exposed, NAME + "_sum") == 0


async def test_a_real_node_observes_each_broadcast_it_writes_to_its_sockets(
    service_env: dict[str, str],
    tmp_path: Path,
    catalog_loaded: Any,
    redis: Any,
    make_player: Any,
) -> None:
    ada = await make_player("ada")
    with ServerProcess({**service_env, **LIVE_KNOBS}, tmp_path) as server:

        async def scraped() -> str:
            async with httpx.AsyncClient(base_url=server.base_url) as http:
                return (await http.get("/metrics")).text

        # A change with nobody connected writes no frame: nothing to observe.
        await score(server.base_url, ada, "quiz_a")
        assert sample(await scraped(), NAME + "_count") == 0
        async with live_client(server.ws_url, ada.token) as client:
            await client.next_update()
            await score(server.base_url, ada, "boss")
            update = await client.update_matching(
                lambda m: any(u["score"] == 110 for u in m["data"]["users"])
            )
            assert update["type"] == "LEADERBOARD_UPDATE"
            exposed = await scraped()
            assert sample(exposed, NAME + "_count") == 1
            # Same machine, same clock: the whole path took well under the 30 s top bucket.
            assert sample(exposed, NAME + "_bucket", le="30.0") == 1
