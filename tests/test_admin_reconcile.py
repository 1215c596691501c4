"""The reconciler agrees with corrections and bans even when their Redis update was lost:
its incremental pass unranks a user whose board row a removal deleted, drops a banned user
from every ranking, and puts them back after an unban."""

from __future__ import annotations

from typing import Any

from app.core.admin import sweep_banned
from app.core.board_reads import current_pairs
from app.db import adjustments, bans
from app.redis.lock import ReconcileLock
from app.redis.scripts import Scripts
from app.repair.reconcile import Reconciler
from tests.conftest import services_of
from tests.support.invariants import ranking_mismatches, redis_ranking
from tests.test_admin_users import complete

VISIBLE = "u.banned_at IS NULL"


async def incremental_pass(app: Any, redis: Any) -> None:
    svc = services_of(app)
    scripts = Scripts(redis, svc.keys)
    reconciler = Reconciler(
        pool=svc.pool,
        redis=redis,
        keys=svc.keys,
        scripts=scripts,
        lock=ReconcileLock(redis, scripts, svc.keys),
        catalog=svc.board_catalog,
    )
    async with reconciler._lock.held() as got:
        assert got
        report = await reconciler.run()
    assert report.mode == "incremental"


async def test_lost_updates_of_corrections_and_bans_are_repaired(
    app, client, db, redis, make_player
) -> None:  # type: ignore[no-untyped-def]
    admin, player, other = await make_player(), await make_player(), await make_player()
    plain = await make_player()
    await complete(client, player, "quiz_a")
    await complete(client, other, "boss")
    await complete(client, plain, "level_a")
    keys = services_of(app).keys
    quiz = await db.fetchval(
        "SELECT id::text FROM score_history WHERE user_id = $1", player.user_id
    )

    # Removed in the database only (as if the node died before its Redis update).
    await adjustments.remove_completion(db, admin.identity, player.user_id, quiz, "exploit")
    assert player.user_id in await redis_ranking(redis, keys, "daily", _period(app, "daily"))
    await incremental_pass(app, redis)
    assert await ranking_mismatches(db, redis, keys) == {}
    assert player.user_id not in await redis_ranking(redis, keys, "daily", _period(app, "daily"))

    # Banned in the database only: the next pass drops them everywhere.
    await bans.ban(db, admin.identity, other.user_id, "aimbot", [])
    await incremental_pass(app, redis)
    assert await ranking_mismatches(db, redis, keys, VISIBLE) == {}
    assert other.user_id not in await redis_ranking(redis, keys, "all-time", "all")

    # Banned in plain SQL: a trigger moves updated_at, so the next pass sees it too.
    await db.execute("UPDATE users SET banned_at = now() WHERE id = $1", plain.user_id)
    await incremental_pass(app, redis)
    assert await ranking_mismatches(db, redis, keys, VISIBLE) == {}
    assert plain.user_id not in await redis_ranking(redis, keys, "all-time", "all")
    # A completion that raced a ban is dropped by the next pass too.
    await db.execute("UPDATE users SET banned_at = now() WHERE id = $1", player.user_id)
    await complete_in_db(db, player.user_id)
    await incremental_pass(app, redis)
    assert await ranking_mismatches(db, redis, keys, VISIBLE) == {}

    # Unbanned in the database only: the next pass brings them back.
    await bans.unban(db, admin.identity, other.user_id, "appeal", [])
    await incremental_pass(app, redis)
    assert await ranking_mismatches(db, redis, keys, VISIBLE) == {}
    assert plain.user_id not in await redis_ranking(redis, keys, "all-time", "all")
    assert (await redis_ranking(redis, keys, "weekly", _period(app, "weekly")))[
        other.user_id
    ] == 100


async def complete_in_db(db: Any, user_id: str) -> None:
    """A completion committed while Redis heard nothing of it."""
    from app.db.completions import commit_completion

    assert await commit_completion(db, user_id, "quiz_b") is not None


def _period(app: Any, board_id: str) -> str:
    from datetime import UTC, datetime

    return dict(current_pairs(services_of(app).board_catalog, datetime.now(UTC)))[board_id]


class FakeRoster:
    def __init__(self) -> None:
        self.removed: list[str] = []

    async def remove_user(
        self, user_id: str, periods: list[tuple[str, str]], *, all_time: bool = True
    ) -> bool:
        self.removed.append(user_id)
        return True

    async def restore_user(self, standings: list[Any]) -> bool:
        return True


async def test_the_sweep_after_a_ban_stops_once_unbanned() -> None:
    roster, banned, slept = FakeRoster(), [True, True, False], []

    async def is_banned(user_id: str) -> bool:
        return banned.pop(0)

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    await sweep_banned(
        "u", [], is_banned=is_banned, roster=roster, delays=(1.0, 3.0, 5.0), sleep=sleep
    )
    assert slept == [1.0, 2.0, 2.0] and roster.removed == ["u", "u"]
