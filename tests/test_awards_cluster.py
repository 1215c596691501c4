"""Server awards across two real server processes sharing PostgreSQL and Redis: 100 copies of
one award sent at once to both nodes award it once and all answer alike."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.support.cli import run_cli
from tests.support.server_process import ServerProcess


async def test_100_concurrent_copies_across_two_nodes_award_once(
    service_env: dict[str, str],
    tmp_path: Path,
    catalog_loaded: Any,
    redis: Any,
    make_player: Any,
    db: asyncpg.Connection,
) -> None:
    made = await asyncio.to_thread(
        run_cli, "apikeys", "create", "arena", "--scope", "award", env=service_env
    )
    assert made.returncode == 0, made.stderr
    headers = {"Authorization": f"ApiKey {made.stdout.strip()}"}
    ada = await make_player("ada")
    body = {"userId": ada.user_id, "actionId": "boss", "idempotencyKey": "match-1-boss"}
    with ServerProcess(service_env, tmp_path) as a, ServerProcess(service_env, tmp_path) as b:
        async with (
            httpx.AsyncClient(base_url=a.base_url, timeout=30) as on_a,
            httpx.AsyncClient(base_url=b.base_url, timeout=30) as on_b,
        ):
            responses = await asyncio.gather(
                *(
                    (on_a if i % 2 else on_b).post("/api/server/awards", json=body, headers=headers)
                    for i in range(100)
                )
            )
        logs = a.log() + b.log()
    assert [r.status_code for r in responses] == [200] * 100
    assert len({r.content for r in responses}) == 1
    assert responses[0].json()["newScore"] == 100
    assert (
        await db.fetchval("SELECT count(*) FROM score_history WHERE user_id = $1", ada.user_id) == 1
    )
    assert made.stdout.strip() not in logs
