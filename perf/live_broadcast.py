"""Broadcast latency of the live endpoint: commit -> receipt at every client.

Starts S server processes (`leaderboard serve`, sharing one PostgreSQL database and one Redis
namespace made for the run), holds N WebSocket clients spread over P client processes and
round-robin over the servers, then commits U top-10-changing scores through the real API
(`POST /api/action/complete`) one at a time. Each client notes when every version reached it;
the commit time is taken just before the POST is sent, so the figures include the HTTP request,
the apply script, the publish, the node's subscription and the fan-out.

Prints p50 / p99 / max over all (client, update) pairs, the per-update time until the last
client had it, and the servers' RSS growth per connection. Traffic goes only to 127.0.0.1; the
run is bounded (--max-seconds) and stops by itself. A benchmark: it prints, it never asserts.

    python perf/live_broadcast.py --clients 2000 --servers 1
    python perf/live_broadcast.py --clients 10000 --servers 2 --client-procs 2

Needs PostgreSQL and Redis: DATABASE_URL (an admin URL; a database is created and dropped)
and REDIS_URL, defaulting to the local servers on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import re
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.catalog import Action  # noqa: E402
from app.core.tokens import Identity, issue_access_token  # noqa: E402
from app.db.accounts import ensure_user  # noqa: E402
from app.db.actions import upsert_actions  # noqa: E402
from app.db.migrations import migrate  # noqa: E402

SECRET = "perf-" + secrets.token_urlsafe(40)
VERSION = re.compile(rb'"version":(\d+)')
# A client's PONG: masked (clients must mask), with a zero key, so the payload reads as is.
PONG = b"\x81\x8f\x00\x00\x00\x00" + b'{"type":"PONG"}'


# -- clients (run in their own processes) ------------------------------------------------------


class LeanClient(asyncio.Protocol):
    """A minimal WebSocket client: handshake, then note the arrival time of every version.

    Deliberately lean (no per-frame objects) so that with client and server on one machine the
    figures say more about the server than about the client library."""

    def __init__(self, request: bytes, ready: asyncio.Future[None], seen: dict[int, float]) -> None:
        self.request, self.ready, self.seen = request, ready, seen
        self.buf = b""
        self.open = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buf += data
        if not self.open:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in self.buf[:20]:
                if not self.ready.done():
                    self.ready.set_exception(RuntimeError(self.buf[:60].decode(errors="replace")))
                return
            self.open, self.buf = True, self.buf[end + 4 :]
        buf = self.buf
        while len(buf) >= 2:
            length, offset = buf[1] & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    break
                length, offset = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    break
                length, offset = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < offset + length:
                break
            payload, opcode = buf[offset : offset + length], buf[0] & 0x0F
            buf = buf[offset + length :]
            if opcode == 1:
                # The version follows type, board, period and epoch (~90 bytes in).
                match = VERSION.search(payload, 0, 160)
                if match:
                    self.seen.setdefault(int(match.group(1)), now)
                    if not self.ready.done():
                        self.ready.set_result(None)
                elif payload == b'{"type":"PING"}' and self.transport is not None:
                    self.transport.write(PONG)
        self.buf = buf

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before the first snapshot"))


async def hold_clients(
    targets: list[tuple[int, str]], ready_pipe: mp.connection.Connection, done: mp.Event
) -> None:
    loop = asyncio.get_running_loop()
    seen: list[dict[int, float]] = []
    transports = []
    gate = asyncio.Semaphore(100)

    async def connect(port: int, token: str) -> None:
        request = (
            f"GET /api/leaderboard/live?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        mine: dict[int, float] = {}
        async with gate:
            ready: asyncio.Future[None] = loop.create_future()
            transport, _ = await loop.create_connection(
                lambda: LeanClient(request, ready, mine), "127.0.0.1", port
            )
            await asyncio.wait_for(ready, 30)
        seen.append(mine)
        transports.append(transport)

    await asyncio.gather(*(connect(port, token) for port, token in targets))
    ready_pipe.send(len(seen))
    while not done.is_set():
        await asyncio.sleep(0.05)
    ready_pipe.send([dict(s) for s in seen])
    for transport in transports:
        transport.abort()


def client_process(
    targets: list[tuple[int, str]], pipe: mp.connection.Connection, done: mp.Event
) -> None:
    import uvloop

    raise_fd_limit()
    uvloop.run(hold_clients(targets, pipe, done))


# -- servers -----------------------------------------------------------------------------------


def raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_server(env: dict[str, str], log_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = (log_dir / f"server-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", "serve"],
        env={**env, "PORT": str(port), "HOST": "127.0.0.1"},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server on {port} did not start; see {log_dir}")


async def prepare_database(admin_url: str, name: str) -> tuple[str, Identity, list[Identity]]:
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    conn = await asyncpg.connect(url)
    await migrate(conn)
    actions = [Action(f"perf_{i}", f"Perf {i}", 100) for i in range(200)]
    await upsert_actions(conn, [*actions, Action("perf_small", "Perf small", 10)])
    driver = await ensure_user(conn, "perf_driver")
    # Ten more users with 30-character names fill the top 10: a message of about 1 KB.
    others = [await ensure_user(conn, f"perf_player_{i:02d}".ljust(30, "x")) for i in range(10)]
    await conn.close()
    return url, driver, others


async def drop_database(admin_url: str, name: str) -> None:
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


# -- the run -----------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--servers", type=int, default=1)
    parser.add_argument("--client-procs", type=int, default=0, help="default: 1 per 5,000 clients")
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between updates")
    parser.add_argument("--max-seconds", type=float, default=300)
    args = parser.parse_args()
    raise_fd_limit()
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("--max-seconds")))
    signal.alarm(int(args.max_seconds))

    admin_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    name = f"perf_{uuid.uuid4().hex[:10]}"
    database_url, driver, others = asyncio.run(prepare_database(admin_url, name))
    per_server = -(-args.clients // args.servers)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_NAMESPACE": name,
        "JWT_SECRET": SECRET,
        "RATE_LIMIT_PER_MINUTE": "100000",
        "WS_MAX_CONNECTIONS": str(per_server + 10),
        "WS_CONNECTS_PER_IP_PER_MINUTE": "1000000",
    }
    log_dir = Path(tempfile.mkdtemp(prefix="live-perf-"))
    servers: list[tuple[subprocess.Popen[bytes], int]] = []
    clients: list[mp.process.BaseProcess] = []
    try:
        servers = [start_server(env, log_dir) for _ in range(args.servers)]
        base_rss = {p.pid: rss_kib(p.pid) for p, _ in servers}
        # Two connections per user (the per-user limit): N/2 users, each a fresh UUID.
        tokens = []
        for _ in range(-(-args.clients // 2)):
            identity = Identity(str(uuid.uuid4()), "watcher")
            tokens += [issue_access_token(identity, SECRET, 3600)] * 2
        targets = [(servers[i % len(servers)][1], tokens[i]) for i in range(args.clients)]
        procs = args.client_procs or max(1, -(-args.clients // 5000))
        ctx = mp.get_context("spawn")
        done = ctx.Event()
        pipes = []
        started = time.monotonic()
        for k in range(procs):
            ours, theirs = ctx.Pipe()
            process = ctx.Process(target=client_process, args=(targets[k::procs], theirs, done))
            process.start()
            clients.append(process)
            pipes.append(ours)
        held = sum(pipe.recv() for pipe in pipes)
        print(f"{held} clients connected in {time.monotonic() - started:.1f} s", flush=True)
        time.sleep(1.0)
        rss = {p.pid: rss_kib(p.pid) for p, _ in servers}
        per_conn_kib = sum(rss[pid] - base_rss[pid] for pid in rss) / held

        token = issue_access_token(driver, SECRET, 3600)
        commits: dict[int, float] = {}
        with httpx.Client(base_url=f"http://127.0.0.1:{servers[0][1]}") as http:
            for other in others:
                bearer = {"Authorization": f"Bearer {issue_access_token(other, SECRET, 3600)}"}
                http.post("/api/action/complete", json={"actionId": "perf_small"}, headers=bearer)
            time.sleep(1.0)
            board = http.get("/api/leaderboard")
            version = int(board.json()["version"])
            message_bytes = len(board.content) + 30
            for i in range(args.updates):
                t0 = time.time()
                response = http.post(
                    "/api/action/complete",
                    json={"actionId": f"perf_{i}"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert response.json().get("top10Changed"), response.text
                version += 1
                commits[version] = t0
                print(f"  update {i + 1}/{args.updates} (version {version})", flush=True)
                time.sleep(args.gap)
        time.sleep(1.0)
        done.set()
        seen: list[dict[int, float]] = []
        for pipe in pipes:
            seen += pipe.recv()
    finally:
        for process in clients:
            process.join(10)
            if process.is_alive():
                process.terminate()
        for process, _ in servers:
            process.send_signal(signal.SIGTERM)
        for process, _ in servers:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        asyncio.run(drop_database(admin_url, name))
        signal.alarm(0)

    latencies: list[float] = []
    last_per_update: list[float] = []
    missing = 0
    for v, t0 in commits.items():
        arrivals = [s[v] - t0 for s in seen if v in s]
        missing += len(seen) - len(arrivals)
        latencies += arrivals
        if arrivals:
            last_per_update.append(max(arrivals))
    ms = [x * 1000 for x in latencies]
    print(
        f"\nclients={len(seen)} servers={args.servers} client_procs={procs} updates={len(commits)}"
        f" message ~{message_bytes} bytes\n"
        f"commit->receipt over all clients: p50 {percentile(ms, 50):.1f} ms, "
        f"p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms\n"
        f"time until the last client had it, per update: median "
        f"{statistics.median(last_per_update) * 1000:.1f} ms\n"
        f"missing deliveries: {missing}\n"
        f"server RSS growth per connection: {per_conn_kib:.1f} KiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
