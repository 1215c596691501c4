"""GET /api/admin/analytics: what players do, ready to draw (app/core/analytics.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pydantic import BaseModel, Field
from quart import Blueprint, request
from quart_schema import security_scheme, tag, validate_response
from redis.exceptions import RedisError

from app.core import analytics
from app.core.analytics import Analytics, NodeConnections
from app.core.ranking import iso
from app.core.tokens import Identity
from app.db.analytics import read_figures
from app.http.admin_auth import ADMIN_ERRORS, requires_admin
from app.http.openapi import errors, parameter
from app.http.request import services
from app.http.services import Services

log = logging.getLogger(__name__)

blueprint = Blueprint("admin_analytics", __name__, url_prefix="/api/admin")

_BAD_DAYS = (400, "`VALIDATION_ERROR`: `days` is not a whole number from 1 to 365.")


class ActionStat(BaseModel):
    actionId: str
    name: str
    completions: int
    points: int


class HourStat(BaseModel):
    hour: str = Field(description="The hour's first instant (UTC).")
    completions: int
    points: int


class DayStat(BaseModel):
    day: str = Field(description="A UTC date, e.g. 2026-11-29.")
    completions: int
    points: int
    activePlayers: int = Field(description="Distinct players with a completion that day (DAU).")
    registrations: int


class ScoreBucket(BaseModel):
    low: int = Field(description="Lowest score in the bucket.")
    high: int | None = Field(description="Exclusive upper bound (null: none).")
    players: int


class NodeStat(BaseModel):
    nodeId: str
    connections: int
    reportedAt: str


class LiveStat(BaseModel):
    total: int
    nodes: list[NodeStat] = Field(description="Each node serving now (reports every 5 s).")


class AnalyticsResponse(BaseModel):
    """Completions come from the score history (operators' adjustments are not activity).
    Days and hours are UTC; every series is dense (zeros included), oldest first."""

    days: int
    generatedAt: str
    popularActions: list[ActionStat] = Field(
        description="The most completed actions over the range (at most 20), most first."
    )
    hourly: list[HourStat] = Field(description="The last 48 hours, this one included.")
    daily: list[DayStat] = Field(description="Every day of the range, today included.")
    dailyActivePlayers: int = Field(description="Distinct players with a completion today.")
    weeklyActivePlayers: int = Field(
        description="Distinct players with a completion over the last 7 days, today included."
    )
    players: int = Field(description="Every account.")
    bannedPlayers: int = Field(description="Banned accounts (left out of the distribution).")
    scoreDistribution: list[ScoreBucket] = Field(
        description="Accounts not banned by all-time score: the first bucket is no points; then "
        "1-2.5-5 steps (1, 10, 25, 50, 100, 250 ...) up to the highest score."
    )
    live: LiveStat

    @classmethod
    def of(cls, report: Analytics) -> AnalyticsResponse:
        return cls(
            days=report.days,
            generatedAt=iso(report.generated_at),
            popularActions=[
                ActionStat(
                    actionId=a.action_id, name=a.name, completions=a.completions, points=a.points
                )
                for a in report.actions
            ],
            hourly=[
                HourStat(hour=iso(h.hour), completions=h.completions, points=h.points)
                for h in report.hourly
            ],
            daily=[
                DayStat(
                    day=d.day.isoformat(),
                    completions=d.completions,
                    points=d.points,
                    activePlayers=d.active,
                    registrations=d.registrations,
                )
                for d in report.daily
            ],
            dailyActivePlayers=report.daily_active,
            weeklyActivePlayers=report.weekly_active,
            players=report.players,
            bannedPlayers=report.banned,
            scoreDistribution=[
                ScoreBucket(low=b.low, high=b.high, players=b.players) for b in report.scores
            ],
            live=LiveStat(
                total=report.live_total,
                nodes=[
                    NodeStat(
                        nodeId=n.node_id, connections=n.connections, reportedAt=iso(n.reported_at)
                    )
                    for n in report.live
                ],
            ),
        )


@blueprint.get("/analytics")
@tag(["admin"])
@security_scheme([{"bearer": []}])
@requires_admin
@validate_response(AnalyticsResponse)
@parameter(
    "days",
    "query",
    "How many UTC days the daily series and popular actions cover, today included.",
    {
        "type": "integer",
        "minimum": 1,
        "maximum": analytics.DAYS_MAX,
        "default": analytics.DAYS_DEFAULT,
    },
)
@errors(_BAD_DAYS, *ADMIN_ERRORS, 500)
async def report(admin: Identity) -> AnalyticsResponse:
    """Popular actions, completions per hour and day, active players, registrations, the
    score distribution and live connections per node."""
    days = analytics.check_days(request.args.get("days"))
    svc = services()
    now = datetime.now(UTC)
    span = analytics.DayRange.ending(now, days)
    figures = await read_figures(svc.read_pool, span, analytics.first_hour(now))
    live = await _live_nodes(svc, now)
    return AnalyticsResponse.of(analytics.report(now, days, figures, live))


async def _live_nodes(svc: Services, now: datetime) -> list[NodeConnections]:
    """Every node's reported count, with this node's own count as of now. Without Redis,
    only this node's (the others cannot be known)."""
    here = NodeConnections(svc.live_nodes.node_id, svc.live.hub.count, now)
    try:
        others = await svc.live_nodes.read()
    except (RedisError, OSError) as error:
        log.warning("live node counts unavailable (%s); reporting this node only", error)
        others = []
    return [here, *(n for n in others if n.node_id != here.node_id)]
