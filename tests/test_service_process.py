"""The real service as a user meets it: `leaderboard serve` in its own process, spoken to
over HTTP by a client that is not part of the project (httpx)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import asyncpg
import httpx
import pytest

from app.db.actions import upsert_actions
from tests.conftest import TEST_ACTIONS
from tests.support.server_process import ServerProcess


@pytest.fixture
def server_env(service_env: dict[str, str]) -> dict[str, str]:
    return service_env


async def test_a_new_user_registers_logs_in_scores_and_sees_the_board(
    server_env, db: asyncpg.Connection, tmp_path, redis
) -> None:
    await upsert_actions(db, TEST_ACTIONS)
    with ServerProcess(server_env, tmp_path, workers=2) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            created = await http.post(
                "/api/auth/register", json={"username": "Ada", "password": "analytical engine"}
            )
            assert created.status_code == 201
            login = await http.post(
                "/api/auth/login", json={"username": "ada", "password": "analytical engine"}
            )
            assert login.status_code == 200
            tokens = login.json()
            auth = {"Authorization": f"Bearer {tokens['accessToken']}"}

            done = await http.post("/api/action/complete", json={"actionId": "boss"}, headers=auth)
            assert done.json()["newScore"] == 100

            # Two worker processes: whichever answers, the board shows the commit (pub/sub
            # brings it to the other worker within moments).
            expected = [("Ada", 100, 1)]
            for _ in range(200):
                board = (await http.get("/api/leaderboard")).json()
                if [(u["username"], u["score"], u["rank"]) for u in board["users"]] == expected:
                    break
                await asyncio.sleep(0.01)
            for _ in range(10):
                board = (await http.get("/api/leaderboard")).json()
                assert [(u["username"], u["score"], u["rank"]) for u in board["users"]] == expected

            me = (await http.get("/api/me", headers=auth)).json()
            assert (me["score"], me["rank"]) == (100, 1)
            assert [c["actionId"] for c in me["completions"]] == ["boss"]

            docs = await http.get("/openapi.json")
            assert "/api/action/complete" in docs.json()["paths"]
        assert server.stop() == 0


def test_serve_refuses_a_weak_secret_with_one_line(server_env) -> None:
    env = {**server_env, "JWT_SECRET": "secret"}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "JWT_SECRET" in result.stderr
