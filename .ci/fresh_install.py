"""CI: the project installs and runs from its own metadata, as a newcomer and production get it.

    python3 .ci/fresh_install.py

Run from a checkout. Works on a copy of the files git tracks (as they are in the working tree,
so uncommitted edits count; a new file counts once `git add`ed), in fresh virtualenvs under one
temp dir that is removed at the end, even on failure:

  a. `pip wheel --no-deps`, that wheel installed WITHOUT extras (what the Dockerfile installs),
     then, from an empty folder: every module under the installed `app` imports, every
     third-party package app/ imports is a direct runtime dependency (or, imported lazily, one of
     an extra), and `leaderboard serve --help` runs;
  b. the README's run command, taken from its first ```sh block, in a fresh copy, except that
     instead of its final `leaderboard dev` this script starts that command itself in an empty
     folder, logs in with the demo login it prints, completes an action, receives the first
     live WebSocket message, stops it with SIGINT and checks that no child process is left.

Progress goes to stdout; on failure the last line is `fresh install: FAILED: <reason>` and the
exit status is 1. Stdlib only: the checks that need `websockets` or `psutil` run as
sub-commands of this file with the fresh venv's python (both are runtime dependencies).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

README_RUN_TAIL = "&& .venv/bin/leaderboard dev"
INSTALL_SECONDS = 900  # a pip install (cache warm: well under a minute)
READY_SECONDS = 180  # `leaderboard dev` until GET /api/leaderboard answers (initdb on first run)
STOP_SECONDS = 60  # SIGINT until the process has exited
# Dropped from the environment of everything started here: the source tree must not leak in
# through PYTHONPATH, and `leaderboard dev` must start its own servers.
SCRUBBED_ENV = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "VIRTUAL_ENV",
    "DATABASE_URL",
    "READ_DATABASE_URL",
    "REDIS_URL",
    "JWT_SECRET",
    "HOST",
    "PORT",
)

_started = time.monotonic()


class Failed(Exception):
    """A check failed; the message is the one-line reason."""


def say(message: str) -> None:
    print(f"fresh install: [{time.monotonic() - _started:5.1f}s] {message}", flush=True)


def show_tail(title: str, text: str, lines: int = 30) -> None:
    tail = text.rstrip().splitlines()[-lines:]
    print(f"---- {title} (last {len(tail)} lines) ----", flush=True)
    for line in tail:
        print(f"  | {line}", flush=True)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def run(
    argv: Sequence[str], *, cwd: Path, timeout: float, what: str, env: dict[str, str] | None = None
) -> str:
    """Run to completion; on a non-zero exit or timeout show the output's tail and fail."""
    try:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            env=env if env is not None else clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        out = expired.output or b""
        show_tail(what, out.decode(errors="replace") if isinstance(out, bytes) else out)
        raise Failed(f"{what}: no result after {timeout:g}s") from None
    if done.returncode != 0:
        show_tail(what, done.stdout)
        last = next((x for x in reversed(done.stdout.splitlines()) if x.strip()), "no output")
        raise Failed(f"{what}: exit status {done.returncode}: {last.strip()}")
    return done.stdout


# -- the copy -----------------------------------------------------------------------------------


def copy_tracked_files(repo: Path, dest: Path) -> int:
    """Copy the files git tracks, as they are in the working tree (uncommitted edits included)."""
    listed = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z"],
        capture_output=True,
        check=False,
        timeout=60,
    )
    if listed.returncode != 0:
        raise Failed(f"git ls-files failed in {repo}: {listed.stderr.decode().strip()}")
    count = 0
    for name in listed.stdout.decode().split("\0"):
        source = repo / name
        if not name or not os.path.lexists(source):  # deleted in the working tree
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
        count += 1
    return count


def subcommand(python: Path, *args: str) -> list[str]:
    """Run a part of this file with another venv's python; -I keeps cwd and PYTHON* out."""
    return [str(python), "-I", str(Path(__file__).resolve()), *args]


def make_venv(path: Path) -> Path:
    run([sys.executable, "-m", "venv", str(path)], cwd=path.parent, timeout=120, what="venv")
    return path / "bin" / "python"


# -- a. the wheel without extras ----------------------------------------------------------------


def check_wheel(src: Path, root: Path) -> None:
    python = make_venv(root / "venv-wheel")
    wheels = root / "wheels"
    run(
        [str(python), "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(src)],
        cwd=root,
        timeout=INSTALL_SECONDS,
        what="pip wheel --no-deps",
    )
    (wheel,) = wheels.glob("*.whl")
    say(f"built {wheel.name}")

    run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)],
        cwd=root,
        timeout=INSTALL_SECONDS,
        what="pip install <wheel> (no extras)",
    )
    run([str(python), "-m", "pip", "check"], cwd=root, timeout=120, what="pip check")
    say("installed the wheel without extras into a fresh venv (pip check: ok)")

    empty = root / "empty-a"
    empty.mkdir()
    out = run(
        subcommand(python, "_imports"),
        cwd=empty,
        timeout=300,
        what="import every module of the installed app",
    )
    say(out.strip().splitlines()[-1])

    leaderboard = python.parent / "leaderboard"
    out = run(
        [str(leaderboard), "serve", "--help"],
        cwd=empty,
        timeout=120,
        what="leaderboard serve --help",
    )
    if "usage: leaderboard serve" not in out:
        show_tail("leaderboard serve --help", out)
        raise Failed("leaderboard serve --help printed no usage line")
    say("leaderboard serve --help: ok")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imports_subcommand() -> int:
    """In the wheel's venv, from an empty cwd: import every module, then compare imports with
    the declared requirements. Prints problems and exits 1 if any."""
    import ast
    import importlib
    import pkgutil
    import traceback
    from importlib import metadata

    import app

    location = Path(app.__file__).resolve().parent
    if "site-packages" not in location.parts:
        print(f"app was imported from {location}, not from the installed wheel")
        return 1
    problems: list[str] = []

    def unwalkable(name: str) -> None:
        problems.append(f"{name}: cannot be imported while walking the package")

    modules = ["app"]
    for info in pkgutil.walk_packages(app.__path__, "app.", onerror=unwalkable):
        modules.append(info.name)
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as error:  # every failure is reported, the first with its traceback
            if not problems:
                traceback.print_exc(limit=-3)
            problems.append(f"import {name}: {type(error).__name__}: {error}")

    # Every third-party import, also inside functions, must name a direct runtime requirement;
    # one only an extra provides is tolerated when it is imported lazily (the dev servers).
    runtime: set[str] = set()
    extras: set[str] = set()
    for requirement in metadata.requires("leaderboard") or []:
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        if match and _canonical(match.group(0)) != "leaderboard":
            in_extra = re.search(r"\bextra\s*==", requirement)
            (extras if in_extra else runtime).add(_canonical(match.group(0)))
    providers = metadata.packages_distributions()
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    seen: dict[tuple[Path, str], str] = {}
    for path in sorted(location.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        module_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in {n.partition(".")[0] for n in names} - stdlib - {"app"}:
                where = f"{path.relative_to(location.parent)}:{node.lineno}"
                if (path, top) in seen:
                    continue  # one report per package and file
                seen[path, top] = where
                dists = {_canonical(d) for d in providers.get(top, [])}
                if dists & runtime:
                    continue
                if dists:
                    problems.append(
                        f"{where} imports {top!r}, from {', '.join(sorted(dists))}, which is "
                        "not a direct runtime dependency (it only arrives through another one)"
                    )
                elif _canonical(top) in extras and id(node) not in module_level:
                    continue
                else:
                    problems.append(
                        f"{where} imports {top!r}, which no runtime dependency provides"
                    )
    for problem in problems:
        print(problem)
    if len(problems) > 1:
        print(f"{len(problems)} problems, the first: {problems[0]}")
    if problems:
        return 1
    packages = sorted({top for _, top in seen})
    print(
        f"imported {len(modules)} modules of the installed app; all {len(packages)} third-party "
        f"packages it imports are declared: {', '.join(packages)}"
    )
    return 0


# -- b. the README's run command ----------------------------------------------------------------


def readme_install_command(readme: Path) -> str:
    match = re.search(r"^```sh\n(.*?)^```", readme.read_text(encoding="utf-8"), re.M | re.S)
    if match is None:
        raise Failed("README.md has no ```sh block")
    command = " ".join(match.group(1).replace("\\\n", " ").split())
    if not command.endswith(README_RUN_TAIL):
        raise Failed(f"README's first sh command does not end with {README_RUN_TAIL!r}: {command}")
    return command[: -len(README_RUN_TAIL)].strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Output:
    """Collects a child's merged stdout/stderr on a thread, so its pipe never fills."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        for raw in stream:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)


def check_readme_run(src: Path, root: Path) -> None:
    install = readme_install_command(src / "README.md")
    say(f"README's run command, without its final `leaderboard dev`: {install}")
    run(["/bin/sh", "-c", install], cwd=src, timeout=INSTALL_SECONDS, what="README's run command")
    python = src / ".venv" / "bin" / "python"
    say("README's install part done in a fresh copy")

    folder = root / "empty-b"
    folder.mkdir()
    port = free_port()
    say(f"starting `leaderboard dev` in an empty folder on port {port}")
    proc = subprocess.Popen(
        [str(src / ".venv" / "bin" / "leaderboard"), "dev"],
        cwd=folder,
        env=clean_env(PORT=str(port), HOST="127.0.0.1", PYTHONUNBUFFERED="1"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # our Ctrl-C is not its Ctrl-C; we send SIGINT ourselves
    )
    output = Output(proc.stdout)
    tree: list[dict[str, Any]] = []
    try:
        wait_until_ready(proc, output, port)
        login = re.search(r"Demo login:\s+(\S+) / (\S+)", output.text())
        if login is None:
            raise Failed("`leaderboard dev` printed no `Demo login:    USER / PASSWORD` line")
        probed = run(
            subcommand(python, "_probe", str(port), *login.groups(), str(proc.pid)),
            cwd=folder,
            timeout=120,
            what="client (login, action, live WebSocket)",
        )
        *lines, last = probed.strip().splitlines()
        for line in lines:
            say(line)
        tree = json.loads(last)
        say(f"children of `leaderboard dev`: {', '.join(p['name'] for p in tree) or 'none'}")
        say("SIGINT")
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            raise Failed(f"`leaderboard dev` still running {STOP_SECONDS}s after SIGINT") from None
        if code not in (0, 130):
            raise Failed(f"`leaderboard dev` exited with status {code} after SIGINT")
        left = leftovers(python, tree, folder, kill=False)
        if left:
            raise Failed(f"child processes left after `leaderboard dev` exited: {left}")
        say(f"stopped with status {code}; none of its {len(tree)} child processes is left")
    except Failed:
        show_tail("leaderboard dev output", output.text(), lines=40)
        raise
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if tree:
            leftovers(python, tree, folder, kill=True)


def wait_until_ready(proc: subprocess.Popen[bytes], output: Output, port: int) -> None:
    url = f"http://127.0.0.1:{port}/api/leaderboard"
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failed(f"`leaderboard dev` exited with status {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    say(f"GET /api/leaderboard: 200 ({len(output.lines)} lines of output)")
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.5)
    raise Failed(f"GET /api/leaderboard did not answer 200 within {READY_SECONDS}s")


def leftovers(python: Path, tree: list[dict[str, Any]], cwd: Path, *, kill: bool) -> list[str]:
    argv = subcommand(python, "_leftovers", json.dumps(tree), *(["--kill"] if kill else []))
    out = run(argv, cwd=cwd, timeout=60, what="leftover check")
    return [line for line in out.splitlines() if line.strip()]


def probe_subcommand(port: int, username: str, password: str, server_pid: int) -> int:
    """In the README's venv: the client side of part b. The last line is the process tree."""
    import psutil
    from websockets.sync.client import connect

    base = f"http://127.0.0.1:{port}"

    def call(method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        request = urllib.request.Request(
            base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"content-type": "application/json"}
            | ({"authorization": f"Bearer {token}"} if token else {}),
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise SystemExit(f"{method} {path}: {error.code} {error.read()[:300]!r}") from None

    token = call("POST", "/api/auth/login", {"username": username, "password": password})[
        "accessToken"
    ]
    print(f"POST /api/auth/login as {username}: got an access token")
    actions = call("GET", "/api/actions")["actions"]
    # A player's own word completes a `claim`; the demo catalog also shows the other kinds.
    claims = [a["actionId"] for a in actions if a.get("verification", "claim") == "claim"]
    if not claims:
        raise SystemExit("GET /api/actions: no action a player can simply claim")
    action = claims[0]
    done = call("POST", "/api/action/complete", {"actionId": action}, token)
    if done.get("success") is not True:
        raise SystemExit(f"POST /api/action/complete: {done}")
    print(f"POST /api/action/complete {action}: +{done['pointsEarned']}, rank {done['rank']}")
    with connect(
        f"ws://127.0.0.1:{port}/api/leaderboard/live?token={token}", open_timeout=10
    ) as ws:
        message = json.loads(ws.recv(timeout=10))
    if message.get("type") != "LEADERBOARD_UPDATE":
        raise SystemExit(f"live WebSocket: first message is not LEADERBOARD_UPDATE: {message}")
    users = [u["username"] for u in message["data"]["users"]]
    if username not in users:
        raise SystemExit(f"live WebSocket: {username} is not on the board it sent: {users}")
    print(f"live WebSocket: first message LEADERBOARD_UPDATE v{message['version']}, {users}")
    tree = [
        {"pid": p.pid, "name": p.name(), "created": p.create_time()}
        for p in psutil.Process(server_pid).children(recursive=True)
    ]
    print(json.dumps(tree))
    return 0


def leftovers_subcommand(tree_json: str, kill: bool) -> int:
    """Print each process of `tree_json` still alive (same pid and start time, not a zombie)."""
    import psutil

    for entry in json.loads(tree_json):
        try:
            process = psutil.Process(entry["pid"])
            if process.create_time() != entry["created"]:
                continue  # the pid was reused
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            print(f"{entry['name']} (pid {entry['pid']})")
            if kill:
                process.kill()
        except psutil.NoSuchProcess:
            continue
    return 0


# -- main ---------------------------------------------------------------------------------------


def fail(reason: str) -> NoReturn:
    print(f"fresh install: FAILED: {reason}", flush=True)
    raise SystemExit(1)


def main() -> int:
    repo = Path(__file__).resolve().parent.parent
    # CI may stop us with SIGTERM: unwind through the finally blocks that clean up.
    signal.signal(signal.SIGTERM, lambda *_: fail("stopped by SIGTERM"))
    root = Path(tempfile.mkdtemp(prefix="leaderboard-fresh-"))
    try:
        src = root / "src"
        say(f"copied {copy_tracked_files(repo, src)} tracked files to {src}")
        say("a. the wheel, installed without extras")
        check_wheel(src, root)
        say("b. the README's run command")
        check_readme_run(src, root)
    except Failed as failure:
        fail(str(failure))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    say("ok")
    return 0


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments[:1] == ["_imports"]:
        sys.exit(imports_subcommand())
    elif arguments[:1] == ["_probe"]:
        port, username, password, pid = arguments[1:5]
        sys.exit(probe_subcommand(int(port), username, password, int(pid)))
    elif arguments[:1] == ["_leftovers"]:
        sys.exit(leftovers_subcommand(arguments[1], kill="--kill" in arguments))
    sys.exit(main())
