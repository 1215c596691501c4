"""A ban seen live, against a real server process: within a second every watcher's top 10
(all time and the weekly board) no longer lists the player, and the player's own socket closes
(4007); an unban brings them back to the watchers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.db import admin as db_admin
from tests.conftest import Player
from tests.support.live_client import users_of
from tests.support.server_process import ServerProcess
from tests.test_live_boards import LIVE_KNOBS, score, watching


@pytest.fixture
def server(
    service_env: dict[str, str], tmp_path: Path, catalog_loaded: Any, redis: Any
) -> Iterator[ServerProcess]:
    with ServerProcess({**service_env, **LIVE_KNOBS}, tmp_path) as process:
        yield process


async def test_a_ban_leaves_every_live_top_10_within_a_second(server, db, make_player) -> None:  # type: ignore[no-untyped-def]
    admin: Player = await make_player("root")
    await db_admin.set_role(db, "root", "admin")
    cheat, honest, watcher = (
        await make_player("cheat"),
        await make_player("honest"),
        await make_player("watcher"),
    )
    await score(server, cheat, "boss")
    await score(server, honest, "level_a")

    def without_cheat(message: dict[str, Any]) -> bool:
        return users_of(message) == [("honest", 50)]

    async with (
        watching(server, watcher.token, None) as all_time,
        watching(server, watcher.token, "weekly") as weekly,
        watching(server, cheat.token, None) as cheats_own,
        httpx.AsyncClient(base_url=server.base_url) as http,
    ):
        await all_time.update_matching(lambda m: users_of(m)[:1] == [("cheat", 100)])
        await weekly.update_matching(lambda m: users_of(m)[:1] == [("cheat", 100)])
        started = time.monotonic()
        response = await http.post(
            f"/api/admin/users/{cheat.user_id}/ban",
            json={"reason": "aimbot"},
            headers=admin.headers,
        )
        assert response.status_code == 200, response.text
        await all_time.update_matching(without_cheat, timeout=1.0)
        await weekly.update_matching(without_cheat, timeout=1.0)
        seen = time.monotonic() - started
        assert seen < 1.0, seen
        assert await cheats_own.close_code(timeout=2.0) == 4007

        response = await http.post(
            f"/api/admin/users/{cheat.user_id}/unban",
            json={"reason": "appeal"},
            headers=admin.headers,
        )
        assert response.status_code == 200, response.text
        back = [("cheat", 100), ("honest", 50)]
        await all_time.update_matching(lambda m: users_of(m) == back, timeout=1.0)
        await weekly.update_matching(lambda m: users_of(m) == back, timeout=1.0)
