"""GET /api/admin/analytics: the figures against history written with known times, the dense
series and buckets (pure functions), and the live count per node."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from app.core import analytics
from app.core.analytics import Bucket, DayRange, DayRow, HourRow
from app.core.errors import InvalidInput
from app.db import admin as db_admin
from app.redis.live_nodes import REPORT_SECONDS, LiveNodes
from tests.conftest import Player, services_of

# -- pure functions -------------------------------------------------------------------------------


def test_days_parameter() -> None:
    assert analytics.check_days(None) == 30
    assert analytics.check_days("1") == 1 and analytics.check_days("365") == 365
    for bad in ("0", "366", "-1", "7.5", "", "abc", "1000"):
        with pytest.raises(InvalidInput):
            analytics.check_days(bad)


def test_dense_series_fill_gaps_with_zeros() -> None:
    now = datetime(2026, 11, 29, 13, 45, tzinfo=UTC)
    hours = analytics.dense_hours(now, [HourRow(datetime(2026, 11, 29, 12, tzinfo=UTC), 3, 30)])
    assert len(hours) == 48
    assert hours[-1].hour == datetime(2026, 11, 29, 13, tzinfo=UTC)
    assert hours[0].hour == datetime(2026, 11, 27, 14, tzinfo=UTC)
    assert [h.completions for h in hours[-2:]] == [3, 0]
    span = DayRange.ending(now, 3)
    assert span.first == date(2026, 11, 27) and span.week_first == date(2026, 11, 23)
    days = analytics.dense_days(
        span, [DayRow(date(2026, 11, 28), 4, 40, 2)], {date(2026, 11, 29): 5}
    )
    assert [(d.day.day, d.completions, d.active, d.registrations) for d in days] == [
        (27, 0, 0, 0),
        (28, 4, 2, 0),
        (29, 0, 0, 5),
    ]


def test_score_buckets_stop_at_the_highest_score() -> None:
    assert analytics.score_buckets({}) == [Bucket(0, 1, 0)]
    # width_bucket: 0 = no points, 1 = [1, 10), 3 = [25, 50)
    assert analytics.score_buckets({0: 4, 1: 2, 3: 1}) == [
        Bucket(0, 1, 4),
        Bucket(1, 10, 2),
        Bucket(10, 25, 0),
        Bucket(25, 50, 1),
    ]
    last = len(analytics.SCORE_EDGES)
    assert analytics.score_buckets({last: 1})[-1] == Bucket(analytics.SCORE_EDGES[-1], None, 1)


# -- the endpoint ---------------------------------------------------------------------------------


@pytest.fixture
async def admin(db, make_player) -> Player:  # type: ignore[no-untyped-def]
    player = await make_player()
    await db_admin.set_role(db, player.identity.username, "admin")
    return player


async def history(db: Any, user_id: str, action_id: str, points: int, at: datetime) -> None:
    """A completion at a known time (the period keeps each row unique)."""
    await db.execute(
        """INSERT INTO score_history (user_id, action_id, period, score_change, created_at)
           VALUES ($1, $2, $3, $4, $5)""",
        user_id,
        action_id,
        at.isoformat(),
        points,
        at,
    )
    await db.execute("UPDATE users SET score = score + $2 WHERE id = $1", user_id, points)


async def test_figures_match_the_history(app, client, db, admin, make_player) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    alice, bob, carol = await make_player(), await make_player(), await make_player()
    # Today: alice twice (quiz_a, boss), bob once. Yesterday: carol. 10 days ago: bob.
    await history(db, alice.user_id, "quiz_a", 10, now - timedelta(milliseconds=3))
    await history(db, alice.user_id, "boss", 100, now - timedelta(milliseconds=2))
    await history(db, bob.user_id, "quiz_a", 10, now - timedelta(milliseconds=1))
    await history(db, carol.user_id, "quiz_b", 10, today - timedelta(hours=2))
    await history(db, bob.user_id, "level_a", 50, today - timedelta(days=10) + timedelta(hours=1))

    response = await client.get("/api/admin/analytics?days=7", headers=admin.headers)
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["days"] == 7 and len(body["daily"]) == 7 and len(body["hourly"]) == 48
    assert body["daily"][-1]["day"] == today.date().isoformat()
    assert body["daily"][-1]["completions"] == 3 and body["daily"][-1]["points"] == 120
    assert body["daily"][-1]["activePlayers"] == 2
    assert body["daily"][-2]["completions"] == 1 and body["daily"][-2]["activePlayers"] == 1
    assert sum(d["completions"] for d in body["daily"]) == 4  # 10 days ago is outside
    assert body["dailyActivePlayers"] == 2 and body["weeklyActivePlayers"] == 3
    assert body["hourly"][-1]["completions"] == 3
    assert sum(h["completions"] for h in body["hourly"]) == 4
    assert body["popularActions"][0] == {
        "actionId": "quiz_a",
        "name": "Quiz A",
        "completions": 2,
        "points": 20,
    }
    assert {a["actionId"] for a in body["popularActions"]} == {"quiz_a", "boss", "quiz_b"}
    # Four accounts registered today (the admin too); scores 110, 60, 10 and 0.
    assert body["daily"][-1]["registrations"] == 4 and body["players"] == 4
    buckets = {(b["low"], b["high"]): b["players"] for b in body["scoreDistribution"]}
    assert buckets[(0, 1)] == 1 and buckets[(10, 25)] == 1
    assert buckets[(50, 100)] == 1 and buckets[(100, 250)] == 1
    assert body["scoreDistribution"][-1]["high"] == 250
    # This node, with its own count now.
    node_id = services_of(app).live_nodes.node_id
    assert [n["nodeId"] for n in body["live"]["nodes"]] == [node_id]
    assert body["live"]["total"] == 0

    wider = await (
        await client.get("/api/admin/analytics?days=30", headers=admin.headers)
    ).get_json()
    assert sum(d["completions"] for d in wider["daily"]) == 5


async def test_adjustments_are_not_activity(app, client, db, admin, make_player) -> None:  # type: ignore[no-untyped-def]
    player = await make_player()
    done = await client.post(
        f"/api/admin/users/{player.user_id}/adjustments",
        json={"points": 500, "reason": "prize"},
        headers=admin.headers,
    )
    assert done.status_code == 200, await done.get_json()
    body = await (await client.get("/api/admin/analytics", headers=admin.headers)).get_json()
    assert body["daily"][-1]["completions"] == 0 and body["dailyActivePlayers"] == 0
    assert body["popularActions"] == []
    # The score distribution is of scores, whatever made them.
    assert any(b["low"] == 500 and b["players"] == 1 for b in body["scoreDistribution"])
    assert body["bannedPlayers"] == 0

    # A banned player stands on no board: counted apart, out of the distribution.
    banned = await client.post(
        f"/api/admin/users/{player.user_id}/ban", json={"reason": "x"}, headers=admin.headers
    )
    assert banned.status_code == 200, await banned.get_json()
    body = await (await client.get("/api/admin/analytics", headers=admin.headers)).get_json()
    assert body["bannedPlayers"] == 1 and body["players"] == 2
    assert sum(b["players"] for b in body["scoreDistribution"]) == 1
    assert not any(b["low"] == 500 for b in body["scoreDistribution"])


async def test_live_connections_of_every_node_reporting(app, client, admin, redis) -> None:  # type: ignore[no-untyped-def]
    svc = services_of(app)
    other = LiveNodes(svc.redis, svc.keys, "node-b")
    await other.report(7)
    gone = LiveNodes(svc.redis, svc.keys, "node-gone")
    await svc.redis.hset(svc.keys.live_nodes, gone.node_id, "3|1000")  # reported in 1970
    body = await (await client.get("/api/admin/analytics", headers=admin.headers)).get_json()
    nodes = {n["nodeId"]: n["connections"] for n in body["live"]["nodes"]}
    assert nodes == {svc.live_nodes.node_id: 0, "node-b": 7}
    assert body["live"]["total"] == 7
    # The stale entry was removed.
    assert await svc.redis.hget(svc.keys.live_nodes, "node-gone") is None


async def test_bad_days_and_non_admins(client, admin, make_player) -> None:  # type: ignore[no-untyped-def]
    for bad in ("0", "366", "x", "-3"):
        response = await client.get(f"/api/admin/analytics?days={bad}", headers=admin.headers)
        body = await response.get_json()
        assert response.status_code == 400 and body["error"]["code"] == "VALIDATION_ERROR"
        assert body["error"]["field"] == "days"
    player = await make_player()
    response = await client.get("/api/admin/analytics", headers=player.headers)
    assert response.status_code == 403
    assert (await response.get_json())["error"]["code"] == "FORBIDDEN"
    assert (await client.get("/api/admin/analytics")).status_code == 401


async def test_each_node_reports_its_count_to_redis(app) -> None:  # type: ignore[no-untyped-def]
    """The serving node writes its live count every few seconds (read by other nodes)."""
    svc = services_of(app)
    deadline = asyncio.get_running_loop().time() + 3 * REPORT_SECONDS
    while await svc.redis.hget(svc.keys.live_nodes, svc.live_nodes.node_id) is None:
        assert asyncio.get_running_loop().time() < deadline, "no report written"
        await asyncio.sleep(0.1)
    nodes = await svc.live_nodes.read()
    assert [(n.node_id, n.connections) for n in nodes] == [(svc.live_nodes.node_id, 0)]
