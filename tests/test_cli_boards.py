"""`leaderboard boards list|create|end`, run as an operator runs it."""

from __future__ import annotations

import json

import asyncpg
import pytest

from tests.conftest import TEST_SECRET
from tests.support.cli import run_cli


@pytest.fixture
def operator_env(database_url: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "JWT_SECRET": TEST_SECRET}


async def test_create_list_and_end_a_tournament(operator_env, db: asyncpg.Connection) -> None:
    created = run_cli(
        "boards",
        "create",
        "winter-cup",
        "--name",
        "Winter cup",
        "--window",
        "tournament",
        "--starts",
        "2026-12-01T18:00Z",
        "--ends",
        "2026-12-03T18:00:00+00:00",
        "--tag",
        "quiz",
        env=operator_env,
    )
    assert created.returncode == 0, created.stderr
    listed = run_cli("boards", "list", "--json", env=operator_env)
    assert listed.returncode == 0, listed.stderr
    boards = {b["boardId"]: b for b in json.loads(listed.stdout)}
    assert set(boards) == {"all-time", "daily", "weekly", "monthly", "winter-cup"}
    cup = boards["winter-cup"]
    assert (cup["window"], cup["actionTag"]) == ("tournament", "quiz")
    assert (cup["startsAt"], cup["endsAt"]) == (
        "2026-12-01T18:00:00.000Z",
        "2026-12-03T18:00:00.000Z",
    )
    assert "winter-cup" in run_cli("boards", "list", env=operator_env).stdout

    ended = run_cli("boards", "end", "winter-cup", env=operator_env)
    assert ended.returncode == 0, ended.stderr
    assert await db.fetchval("SELECT ended_at IS NOT NULL FROM boards WHERE id = 'winter-cup'")
    assert run_cli("boards", "end", "winter-cup", env=operator_env).returncode == 1


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["create", "Bad Id", "--name", "x", "--window", "day"], "board id"),
        (["create", "cup", "--name", "x", "--window", "tournament"], "start and an end"),
        (["create", "everything", "--name", "x", "--window", "all"], "give a tag"),
        (["create", "weekly", "--name", "x", "--window", "week"], "already"),
        (["end", "weekly"], "built-in"),
    ],
)
def test_refusals_are_one_line(operator_env, args: list[str], problem: str) -> None:
    result = run_cli("boards", *args, env=operator_env)
    assert result.returncode == 2, result.stdout
    assert problem in result.stderr and "Traceback" not in result.stderr
