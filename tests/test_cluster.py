"""The local cluster (deploy/local_cluster.py), used as an operator would: two API nodes behind
Debian's nginx, PostgreSQL primary plus a pg_basebackup replica, Redis with AOF.

Clients reach it as in production: over https:// and wss:// only, trusting the development CA
the cluster made; plain HTTP answers with a redirect. An update sent through nginx reaches a
WebSocket client that nginx routed to the other node; with Redis down (and then the primary
too) a node reads the board from the replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.core.tokens import issue_access_token
from app.db.accounts import ensure_user
from tests.support.live_client import LiveClient, live_client, users_of
from tests.support.server_process import free_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))
from local_cluster import find_nginx  # noqa: E402

pytestmark = pytest.mark.skipif(
    find_nginx() is None, reason="nginx not installed (apt-get install -y nginx-light)"
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("cluster")
    out = (base / "script.log").open("wb")
    script = subprocess.Popen(
        [
            *(sys.executable, str(ROOT / "deploy" / "local_cluster.py")),
            *("--dir", str(base / "c"), "--port", str(free_port())),
            *("--http-port", str(free_port()), "--throwaway"),
        ],
        env={
            **os.environ,
            "RATE_LIMIT_PER_MINUTE": "1000",
            "WS_CONNECTS_PER_IP_PER_MINUTE": "10000",
        },
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    state_file = base / "c" / "cluster.json"
    try:
        deadline = 120.0
        while not state_file.exists():
            if script.poll() is not None:
                pytest.fail("the cluster script exited:\n" + (base / "script.log").read_text())
            deadline -= 0.1
            assert deadline > 0, (base / "script.log").read_text()
            subprocess.run(["sleep", "0.1"], check=False)  # a sync fixture: no event loop here
        state: dict[str, Any] = json.loads(state_file.read_text())
        state["file"] = str(state_file)
        yield state
    finally:
        script.send_signal(signal.SIGTERM)
        try:
            script.wait(60)
        except subprocess.TimeoutExpired:
            script.kill()
            script.wait()


def trusting(cluster: dict[str, Any]) -> ssl.SSLContext:
    """Verify the cluster's certificate against its development CA, as a client must."""
    return ssl.create_default_context(cafile=cluster["ca_file"])


def https(cluster: dict[str, Any]) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=cluster["url"], verify=trusting(cluster))


async def token_for(cluster: dict[str, Any], name: str) -> str:
    conn = await asyncpg.connect(cluster["primary"]["url"])
    try:
        identity = await ensure_user(conn, name)
    finally:
        await conn.close()
    return issue_access_token(identity, Path(cluster["jwt_secret_file"]).read_text().strip(), 900)


async def gauge(url: str, name: str) -> float:
    async with httpx.AsyncClient(base_url=url) as http:
        for line in (await http.get("/metrics")).text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


async def until(condition: Any, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


@pytest.fixture
async def clients_on_both_nodes(cluster: dict[str, Any]) -> AsyncIterator[list[LiveClient]]:
    """WebSocket clients connected through nginx until each node holds at least one (each
    node's /metrics connection gauge tells where nginx sent each)."""
    nodes = [n["url"] for n in cluster["nodes"]]

    async def counts() -> list[float]:
        return [await gauge(n, "leaderboard_ws_connections") for n in nodes]

    async with contextlib.AsyncExitStack() as stack:
        clients: list[LiveClient] = []
        for i in range(8):
            token = await token_for(cluster, f"watcher{i}")
            client = await stack.enter_async_context(
                live_client(cluster["ws_url"], token, ssl=trusting(cluster))
            )
            await client.next_update()
            clients.append(client)

            async def counted(expected: int = len(clients)) -> bool:
                return sum(await counts()) == expected

            await until(counted)
            if all(c >= 1 for c in await counts()):
                break
        assert all(c >= 1 for c in await counts()), "nginx never routed a client to both nodes"
        yield clients


async def test_an_update_through_nginx_reaches_clients_on_both_nodes(
    cluster: dict[str, Any], clients_on_both_nodes: list[LiveClient]
) -> None:
    assert cluster["ws_url"].startswith("wss://")
    token = await token_for(cluster, "scorer")
    async with https(cluster) as http:
        response = await http.post(
            "/api/action/complete",
            json={"actionId": "quiz_001"},
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "cluster-test-1"},
        )
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-ID"] == "cluster-test-1"
    # Whichever node served the POST, a client on the other node has the update as well.
    for client in clients_on_both_nodes:
        message = await client.update_matching(lambda m: ("scorer", 10) in users_of(m))
        assert ("scorer", 10) in users_of(message)


async def test_plain_http_only_redirects_to_https(cluster: dict[str, Any]) -> None:
    port = cluster["url"].rsplit(":", 1)[1]
    async with httpx.AsyncClient(base_url=cluster["http_url"]) as http:
        for method, path in [
            ("GET", "/"),
            ("GET", "/api/leaderboard"),
            ("POST", "/api/action/complete"),
        ]:
            response = await http.request(method, path + "?x=1")
            # Nothing is served over plain HTTP: a permanent, method-keeping redirect.
            assert response.status_code == 308, (method, path, response.text)
            assert response.headers["location"] == f"https://127.0.0.1:{port}{path}?x=1"
            assert "users" not in response.text
    async with https(cluster) as http:
        board = await http.get("/api/leaderboard")
        assert board.status_code == 200 and "users" in board.json()
        assert board.headers["strict-transport-security"] == "max-age=63072000"
        page = await http.get("/")
        assert page.status_code == 200 and "strict-transport-security" in page.headers


async def test_tls_is_1_2_or_newer_with_forward_secret_aead_ciphers_only(
    cluster: dict[str, Any],
) -> None:
    host, port = "127.0.0.1", int(cluster["url"].rsplit(":", 1)[1])

    async def handshake(context: ssl.SSLContext) -> tuple[str, str]:
        _, writer = await asyncio.open_connection(host, port, ssl=context)
        try:
            obj = writer.get_extra_info("ssl_object")
            return obj.version(), obj.cipher()[0]
        finally:
            writer.close()

    modern = trusting(cluster)
    assert (await handshake(modern))[0] == "TLSv1.3"
    tls12 = trusting(cluster)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    version, cipher = await handshake(tls12)
    assert (
        version == "TLSv1.2"
        and cipher.startswith("ECDHE-")
        and ("GCM" in cipher or "CHACHA" in cipher)
    )
    # A TLS 1.2 client offering only a CBC suite (forward-secret, but not AEAD) is refused by
    # the server: the client itself would have accepted it.
    cbc_only = trusting(cluster)
    cbc_only.maximum_version = ssl.TLSVersion.TLSv1_2
    cbc_only.set_ciphers("ECDHE-ECDSA-AES128-SHA")
    with pytest.raises(ssl.SSLError):
        await handshake(cbc_only)
    # And a client that does not trust the development CA does not get through.
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(ssl.create_default_context())


async def test_the_page_works_over_https_with_its_live_socket_on_wss(
    cluster: dict[str, Any],
) -> None:
    import shutil

    chromium = shutil.which("chromium")
    playwright_api = pytest.importorskip("playwright.async_api")
    if chromium is None:
        pytest.skip("no Chromium (apt-get install chromium)")
    sockets: list[str] = []
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            # Chromium keeps its own trust store; the certificate itself is verified against
            # the development CA by the other tests here.
            context = await browser.new_context(ignore_https_errors=True)
            page = await context.new_page()
            page.on("websocket", lambda ws: sockets.append(ws.url))
            await page.goto(cluster["url"] + "/")
            await page.fill("#username", "httpsplayer")
            await page.fill("#password", "password123")
            await page.click("#signup-button")
            await page.wait_for_function(
                "() => document.getElementById('connection').textContent.startsWith('Live')",
                timeout=15_000,
            )
        finally:
            await browser.close()
    assert sockets and all(url.startswith("wss://127.0.0.1:") for url in sockets), sockets


async def test_with_redis_down_a_node_reads_the_board_from_the_replica(
    cluster: dict[str, Any],
) -> None:
    token = await token_for(cluster, "replicated")
    async with https(cluster) as http:
        response = await http.post(
            "/api/action/complete",
            json={"actionId": "level_1"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        expected = users_of({"data": (await http.get("/api/leaderboard")).json()})

    # The replica has the commit (streaming replication).
    replica = await asyncpg.connect(cluster["replica"]["url"])
    try:

        async def replicated() -> bool:
            return bool(
                await replica.fetchval("SELECT score FROM users WHERE username = 'replicated'")
            )

        await until(replicated)
    finally:
        await replica.close()

    os.kill(cluster["redis"]["pid"], signal.SIGTERM)
    # Node 2 restarts while Redis is down (the script restarts it): it has no board in memory.
    node = cluster["nodes"][1]
    os.kill(node["pid"], signal.SIGTERM)

    async def restarted() -> bool:
        state = json.loads(Path(cluster["file"]).read_text())
        if state["nodes"][1]["pid"] == node["pid"]:
            return False
        try:
            async with httpx.AsyncClient(base_url=node["url"]) as http:
                return (await http.get("/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    await until(restarted, 30)
    async with httpx.AsyncClient(base_url=node["url"]) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["redis"].startswith("unreach")
        # And with the primary stopped too, only the replica can have answered.
        os.kill(cluster["primary"]["pid"], signal.SIGINT)

        async def primary_down() -> bool:
            try:
                conn = await asyncpg.connect(cluster["primary"]["url"], timeout=1)
            except (OSError, asyncpg.PostgresError):
                return True
            await conn.close()
            return False

        await until(primary_down)
        board = await http.get("/api/leaderboard")
        assert board.status_code == 200
        assert users_of({"data": board.json()}) == expected


def test_compose_and_the_nginx_config_pass_the_real_tools() -> None:
    import shutil

    if not (shutil.which("docker-compose") or shutil.which("docker")):
        pytest.skip("neither docker compose nor docker-compose installed")
    done = subprocess.run(
        [str(ROOT / "deploy" / "validate.sh")], capture_output=True, text=True, check=False
    )
    if done.returncode == 2:
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, done.stderr
    assert "compose.yml: ok" in done.stdout and "nginx config: ok" in done.stdout
