"""`leaderboard issuers` and `leaderboard actions load` with verification, run as an operator."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

from app.db.actions import list_actions
from app.db.issuers import find_issuer
from tests.conftest import TEST_SECRET
from tests.support.cli import run_cli


@pytest.fixture
def operator_env(database_url: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "JWT_SECRET": TEST_SECRET}


async def test_create_prints_the_secret_once_list_never_and_revoke_ends_it(
    operator_env, db: asyncpg.Connection
) -> None:
    created = run_cli("issuers", "create", "game-eu-1", env=operator_env)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert len(secret) >= 43 and "\n" not in secret
    stored = await find_issuer(db, "game-eu-1")
    assert stored is not None and stored.secret == secret and not stored.revoked

    listed = run_cli("issuers", "list", env=operator_env)
    as_json = run_cli("issuers", "list", "--json", env=operator_env)
    assert "game-eu-1" in listed.stdout and secret not in listed.stdout + listed.stderr
    assert json.loads(as_json.stdout)[0]["revokedAt"] is None
    assert secret not in as_json.stdout

    again = run_cli("issuers", "create", "game-eu-1", env=operator_env)
    assert again.returncode == 2 and "exists" in again.stderr

    revoked = run_cli("issuers", "revoke", "game-eu-1", env=operator_env)
    assert revoked.returncode == 0, revoked.stderr
    assert (await find_issuer(db, "game-eu-1")).revoked  # type: ignore[union-attr]
    assert json.loads(run_cli("issuers", "list", "--json", env=operator_env).stdout)[0]["revokedAt"]
    # A revoked name is never given a new secret.
    assert run_cli("issuers", "create", "game-eu-1", env=operator_env).returncode == 2


@pytest.mark.parametrize("name", ["Game Server", "LeaderBoard", "x" * 65, "_lead", "a/b"])
def test_bad_issuer_names_are_refused(operator_env, name: str) -> None:
    result = run_cli("issuers", "create", name, env=operator_env)
    assert result.returncode == 2 and "issuer name must match" in result.stderr


def test_revoking_an_unknown_issuer_says_so(operator_env) -> None:
    result = run_cli("issuers", "revoke", "nobody", env=operator_env)
    assert result.returncode == 1 and "no issuer 'nobody'" in result.stderr


async def test_actions_load_takes_verification_tags_and_quiz_keys_from_csv(
    operator_env, db: asyncpg.Connection, tmp_path: Path
) -> None:
    catalog = tmp_path / "actions.csv"
    catalog.write_text(
        "id,name,points,tags,verification,questions,answers\n"
        "trivia,Trivia,10,quiz,quiz,Capital of Peru?|Largest ocean?,Lima|Pacific\n"
        "raid,Raid,50,level,receipt,,\n"
    )
    loaded = run_cli("actions", "load", str(catalog), env=operator_env)
    assert loaded.returncode == 0, loaded.stderr
    actions = {a.id: a for a in await list_actions(db)}
    assert actions["trivia"].answers == ("Lima", "Pacific")
    assert actions["trivia"].tags == ("quiz",)
    assert actions["raid"].verification == "receipt"
    listed = run_cli("actions", "list", env=operator_env).stdout.splitlines()
    assert "verify" in listed[0]
    assert any(line.startswith("raid") and " receipt " in line for line in listed)
    assert not any("Lima" in line for line in listed)  # the answer key stays in the database


def test_a_bad_quiz_entry_is_named_without_its_answers(operator_env, tmp_path: Path) -> None:
    catalog = tmp_path / "actions.json"
    catalog.write_text(
        json.dumps(
            [
                {
                    "id": "trivia",
                    "name": "T",
                    "points": 5,
                    "verification": "quiz",
                    "questions": ["A?", "B?"],
                    "answers": ["hidden-answer"],
                }
            ]
        )
    )
    result = run_cli("actions", "load", str(catalog), env=operator_env)
    assert result.returncode == 2
    assert "entry 1 (trivia): answers:" in result.stderr
    assert "hidden-answer" not in result.stderr and "Traceback" not in result.stderr


async def test_names_keep_their_case_and_are_unique_ignoring_it(
    operator_env, db: asyncpg.Connection
) -> None:
    created = run_cli("issuers", "create", "GameServer-EU:1", env=operator_env)
    assert created.returncode == 0, created.stderr
    assert (await find_issuer(db, "GameServer-EU:1")) is not None
    assert await find_issuer(db, "gameserver-eu:1") is None  # `iss` is matched exactly
    clash = run_cli("issuers", "create", "gameserver-eu:1", env=operator_env)
    assert clash.returncode == 2 and "ignoring case" in clash.stderr
    assert run_cli("issuers", "revoke", "gameserver-EU:1", env=operator_env).returncode == 0
    assert (await find_issuer(db, "GameServer-EU:1")).revoked  # type: ignore[union-attr]
