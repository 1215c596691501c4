"""Done when: adjustments, removals and bans run concurrently with completions, and then every
invariant holds: users.score = the sum of history; every board's score = the sum of its
window's rows; each current ranking in Redis = the database (banned players in neither); and
a reconcile pass (dry run) finds nothing to repair."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from app.core.boards import new_board
from app.core.settings import Settings
from app.db import admin as db_admin
from app.db import boards as db_boards
from app.http.app import create_app
from app.redis.keys import Keys
from app.redis.lock import ReconcileLock
from app.redis.scripts import Scripts
from app.repair.reconcile import Reconciler
from tests.conftest import Player, make_settings, services_of
from tests.support.invariants import board_mismatches, history_mismatches, ranking_mismatches

ACTIONS = ["quiz_a", "quiz_b", "quiz_c", "level_a", "level_b", "boss", "daily_login"]
VISIBLE = "u.banned_at IS NULL"


@pytest.fixture
async def boards_made(db: asyncpg.Connection, catalog_loaded: object) -> None:
    """A tagged board and a running tournament besides the built-in ones, before the app
    starts (its first reconcile pass seeds every current period)."""
    await db.execute("UPDATE actions SET tags = '{quiz}' WHERE id LIKE 'quiz%'")
    now = datetime.now(UTC)
    await db_boards.insert_board(db, new_board("quiz-week", "Quiz week", "week", action_tag="quiz"))
    await db_boards.insert_board(
        db,
        new_board(
            "cup",
            "Cup",
            "tournament",
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=2),
        ),
    )


@pytest.fixture
async def quiet_app(
    backing_servers: Any, database_url: str, namespace: str, boards_made: None, redis: Redis
) -> AsyncIterator[Any]:
    """The app without its periodic reconcile (it would repair what this test must see)."""
    settings: Settings = make_settings(
        database_url, backing_servers.redis_url, namespace, reconcile_interval_seconds=3600.0
    )
    quart_app = create_app(settings)
    async with quart_app.test_app() as test_app:
        yield test_app


async def eventually_equal(db: asyncpg.Connection, redis: Redis, keys: Keys) -> None:
    """Redis and the database agree on every current ranking (within a few seconds: a ban's
    follow-up sweep may still be due)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while found := await ranking_mismatches(db, redis, keys, VISIBLE):
        if loop.time() >= deadline:
            pytest.fail(await explain(db, found))
        await asyncio.sleep(0.05)


async def explain(db: asyncpg.Connection, found: dict[str, Any]) -> str:
    """Each differing user's (database, Redis) score per board, with their story."""
    lines = []
    for name, (in_db, in_redis) in found.items():
        for user in in_db.keys() | in_redis.keys():
            if in_db.get(user) != in_redis.get(user):
                lines.append(f"{name} {user}: db {in_db.get(user)} redis {in_redis.get(user)}")
    for user in {line.split()[1].rstrip(":") for line in lines}:
        for row in await db.fetch(
            "SELECT at, action, details FROM admin_audit WHERE target = $1 ORDER BY id",
            f"user:{user}",
        ):
            lines.append(f"  {user} {row['at']} {row['action']} {row['details']}")
        for row in await db.fetch(
            "SELECT created_at, kind, action_id, score_change FROM score_history "
            "WHERE user_id = $1 ORDER BY created_at",
            user,
        ):
            lines.append(
                f"  {user} {row['created_at']} {row['kind']} {row['action_id']} "
                f"{row['score_change']}"
            )
    return "\n".join(lines)


async def test_corrections_and_bans_concurrent_with_completions_keep_every_invariant(
    quiet_app, db, redis, make_player, namespace
) -> None:  # type: ignore[no-untyped-def]
    client = quiet_app.test_client()
    keys = services_of(quiet_app).keys
    rng = random.Random(14)
    admin = await make_player("the_admin")
    await db_admin.set_role(db, "the_admin", "admin")
    players: list[Player] = [await make_player(f"player_{n:02d}") for n in range(12)]
    await eventually_equal(db, redis, keys)  # every board is live before the storm

    async def completions(player: Player) -> None:
        for action in rng.sample(ACTIONS, len(ACTIONS)):
            await client.post(
                "/api/action/complete", json={"actionId": action}, headers=player.headers
            )

    statuses: list[int] = []

    async def admin_call(method: str, path: str, body: dict[str, Any]) -> None:
        response = await client.open(path, method=method, json=body, headers=admin.headers)
        statuses.append(response.status_code)

    async def corrections() -> None:
        for _ in range(40):
            player = rng.choice(players)
            kind = rng.random()
            if kind < 0.35:
                points = rng.choice([-120, -30, -5, 5, 40, 250])
                await admin_call(
                    "POST",
                    f"/api/admin/users/{player.user_id}/adjustments",
                    {"points": points, "reason": "fix"},
                )
            elif kind < 0.8:
                ids = await services_of(quiet_app).pool.fetch(
                    "SELECT id::text FROM score_history WHERE user_id = $1 AND kind = 'completion'",
                    player.user_id,
                )
                if ids:
                    await admin_call(
                        "DELETE",
                        f"/api/admin/users/{player.user_id}/completions/{rng.choice(ids)['id']}",
                        {"reason": "cheat"},
                    )
            else:
                verb = rng.choice(["ban", "unban"])
                await admin_call(
                    "POST", f"/api/admin/users/{player.user_id}/{verb}", {"reason": "why"}
                )
            await asyncio.sleep(0)

    await asyncio.gather(*(completions(p) for p in players), corrections(), corrections())

    assert 200 in statuses and set(statuses) <= {200, 400, 404}
    counts = await db.fetchrow(
        "SELECT count(*) FILTER (WHERE action = 'score.adjust') AS adjust, "
        "count(*) FILTER (WHERE action = 'completion.remove') AS remove, "
        "count(*) FILTER (WHERE action = 'user.ban') AS ban FROM admin_audit"
    )
    assert counts["adjust"] > 0 and counts["remove"] > 0 and counts["ban"] > 0, dict(counts)

    assert await history_mismatches(db) == []
    assert await board_mismatches(db) == {}
    await eventually_equal(db, redis, keys)  # Redis = database, for every board, now
    assert await ranking_mismatches(db, redis, keys, VISIBLE) == {}
    # Nothing in the database ranks a banned player.
    banned = {
        r["id"] for r in await db.fetch("SELECT id::text FROM users WHERE banned_at IS NOT NULL")
    }
    top = await (await client.get("/api/leaderboard")).get_json()
    assert not banned & {u["userId"] for u in top["users"]}

    # The reconciler agrees: a dry run over every board finds no drift.
    pool = services_of(quiet_app).pool
    scripts = Scripts(redis, keys)
    reconciler = Reconciler(
        pool=pool,
        redis=redis,
        keys=keys,
        scripts=scripts,
        lock=ReconcileLock(redis, scripts, keys),
        catalog=services_of(quiet_app).board_catalog,
    )
    async with reconciler._lock.held() as got:
        assert got
        report = await reconciler.run(full=True, dry_run=True)
    for sub in [report, *report.boards]:
        assert sub.drift.total == 0, sub.summary()
    assert len(report.boards) == 5  # daily, weekly, monthly, quiz-week, cup
