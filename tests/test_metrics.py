"""GET /metrics reports true values: request latency and errors per route, rate-limit
rejections, the database pools, Redis fallbacks, live connections and broadcasts; and the
logs are JSON lines with the request id and no secrets."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app.obs.logging_setup import JsonFormatter, redact
from tests.conftest import services_of
from tests.support.live_client import live_client
from tests.support.server_process import ServerProcess
from tests.test_live_protocol import LIVE_KNOBS, score


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in Prometheus text (0 when absent)."""
    # The exposition writes labels sorted by name.
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def scrape(client: Any) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return (await response.get_data()).decode()


async def test_latency_errors_and_rate_limit_rejections_per_route(
    app, client, make_player, settings
) -> None:
    player = await make_player("metered")
    for _ in range(3):
        assert (await client.get("/api/leaderboard")).status_code == 200
    bad = await client.post(
        "/api/action/complete", json={"actionId": "quiz_a"}, headers={"Authorization": "Bearer x"}
    )
    assert bad.status_code == 401
    actions = ["quiz_a", "quiz_b", "quiz_c", "level_a", "level_b", "boss", "daily_login"]
    statuses = []
    for action in actions + ["quiz_a"] * (settings.rate_limit_per_minute - len(actions) + 2):
        response = await client.post(
            "/api/action/complete", json={"actionId": action}, headers=player.headers
        )
        statuses.append(response.status_code)
    rejected = statuses.count(429)
    assert rejected >= 1

    text = await scrape(client)
    route = "/api/leaderboard"
    count = sample(
        text, "leaderboard_http_request_duration_seconds_count", method="GET", route=route
    )
    assert count == 3
    # Buckets are cumulative and end at +Inf: p95/p99 come from histogram_quantile.
    assert (
        sample(
            text,
            "leaderboard_http_request_duration_seconds_bucket",
            le="+Inf",
            method="GET",
            route=route,
        )
        == 3
    )
    post = "/api/action/complete"
    assert sample(text, "leaderboard_http_errors_total", route=post, code="UNAUTHORIZED") == 1
    assert (
        sample(text, "leaderboard_http_errors_total", route=post, code="RATE_LIMIT_EXCEEDED")
        == rejected
    )
    assert sample(text, "leaderboard_rate_limit_rejections_total", route=post) == rejected
    assert (
        sample(text, "leaderboard_http_requests_total", method="POST", route=post, status="200")
        == 7
    )
    assert sample(text, "leaderboard_broadcasts_total") >= 1


async def test_pool_gauges_follow_connections_in_use(app, client) -> None:
    pool = services_of(app).pool
    before = sample(await scrape(client), "leaderboard_db_pool_in_use", pool="primary")
    async with pool.acquire(), pool.acquire():
        text = await scrape(client)
        assert sample(text, "leaderboard_db_pool_in_use", pool="primary") == before + 2
        assert sample(text, "leaderboard_db_pool_connections", pool="primary") >= 2
        assert sample(text, "leaderboard_db_pool_max", pool="primary") == pool.get_max_size()


async def test_redis_failures_and_fallbacks_are_counted(app, client, make_player) -> None:
    services = services_of(app)
    player = await make_player("fallback")
    # Redis is reported down for a moment (as after a failed call): requests take fallbacks.
    services.health.failed(OSError("test outage"), "test")
    response = await client.post(
        "/api/action/complete", json={"actionId": "quiz_a"}, headers=player.headers
    )
    assert response.status_code == 200
    text = await scrape(client)
    assert sample(text, "leaderboard_redis_failures_total") >= 1
    assert sample(text, "leaderboard_redis_fallbacks_total") >= 2  # the limit and the apply


@pytest.fixture
def server(
    service_env: dict[str, str],
    tmp_path: Path,
    catalog_loaded: Any,
    redis: Any,
) -> Iterator[ServerProcess]:
    with ServerProcess({**service_env, **LIVE_KNOBS}, tmp_path) as process:
        yield process


async def metric(server: ServerProcess, name: str) -> float:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        return sample((await http.get("/metrics")).text, name)


async def eventually_equal(read: Any, expected: float, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (value := await read()) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"{value} != {expected}"
        await asyncio.sleep(0.05)


async def test_the_connection_gauge_follows_real_websocket_clients(
    server: ServerProcess, make_player: Any
) -> None:
    ada, bob = await make_player("ada"), await make_player("bob")

    async def connections() -> float:
        return await metric(server, "leaderboard_ws_connections")

    await eventually_equal(connections, 0)
    async with live_client(server.ws_url, ada.token) as one:
        await one.next_update()
        await eventually_equal(connections, 1)
        async with live_client(server.ws_url, bob.token) as two:
            await two.next_update()
            await eventually_equal(connections, 2)
            sent_before = await metric(server, "leaderboard_ws_messages_sent_total")
            await score(server.base_url, bob, "boss")
            await one.next_update()
            await two.next_update()

            # One broadcast handed to both sockets.
            async def sent() -> float:
                return await metric(server, "leaderboard_ws_messages_sent_total") - sent_before

            await eventually_equal(sent, 2)
        await eventually_equal(connections, 1)
    await eventually_equal(connections, 0)


async def test_logs_are_json_with_the_request_id_and_never_a_secret(
    app, client, make_player
) -> None:
    player = await make_player("logged")
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(JsonFormatter().format(record))

    handler = Capture()
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    try:
        response = await client.post(
            "/api/action/complete?token=" + player.token,
            json={"actionId": "quiz_a"},
            headers={**player.headers, "X-Request-ID": "req-123"},
        )
        assert response.headers["X-Request-ID"] == "req-123"
        logging.getLogger("test").warning("login with %s", f"password={player.token}")
    finally:
        logging.getLogger().removeHandler(handler)
    entries = [orjson.loads(line) for line in lines]
    access = [e for e in entries if e["logger"] == "leaderboard.access"]
    assert access and access[-1]["request_id"] == "req-123"
    assert access[-1]["message"] == "POST /api/action/complete 200"
    assert all(player.token not in line for line in lines)
    assert redact("postgresql://app:hunter2@db:5432/x") == "postgresql://app:[REDACTED]@db:5432/x"
    assert "hunter2" not in redact('{"password": "hunter2"}')
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer [REDACTED]"


async def test_successful_board_reads_are_counted_but_not_access_logged(app, client) -> None:
    lines: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record)

    handler = Capture()
    access = logging.getLogger("leaderboard.access")
    access.addHandler(handler)
    previous = access.level
    access.setLevel(logging.INFO)
    try:
        assert (await client.get("/api/leaderboard")).status_code == 200
        assert (await client.get("/api/actions")).status_code == 200
    finally:
        access.removeHandler(handler)
        access.setLevel(previous)
    messages = [r.getMessage() for r in lines]
    assert "GET /api/actions 200" in messages
    assert not any("/api/leaderboard" in m for m in messages)


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: BEARER abc.def",
        "eyJhbGciOi.eyJzdWIi.c2ln in a message",
        "GET /api/leaderboard/live?Token=abc&x=1",
        "passwd: hunter2",
        "redis://default:hunter2@cache:6379/0",
    ],
)
def test_the_quick_check_before_redaction_lets_no_secret_through(text: str) -> None:
    # redact() skips its patterns when none of their trigger words occurs; every kind of
    # secret must still be masked, and a line without any must come back unchanged.
    assert "[REDACTED" in redact(text)
    plain = '{"message":"POST /api/action/complete 200","request_id":"abc","status":200}'
    assert redact(plain) == plain
