"""Admin analytics: what players do, as dense series ready to draw (``GET /api/admin/analytics``).

The database adapter (app/db/analytics.py) returns sparse aggregates (only hours and days that
had completions); this module turns them into dense series over a range of UTC days, computes
the rolling 7-day active players from the per-day changes the adapter counts, and groups scores
into histogram buckets. Everything here is a pure function of its inputs, so the edges (a range
that starts before any data, a day with nothing) are tested without a database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from app.core.errors import InvalidInput

DAYS_DEFAULT, DAYS_MAX = 30, 365
HOURS = 48
WEEK_DAYS = 7
# Popular actions: the most completed ones (a catalog can be large; a chart shows a few).
TOP_ACTIONS = 20

# Score histogram edges: 1-2.5-5 steps on a log scale. Scores are sums of 1..100-point
# actions and their spread is wide and skewed (many small, a few large): equal-width buckets
# would put nearly everyone in the first bar. Bucket i holds scores in [EDGES[i-1], EDGES[i]);
# bucket 0 holds the players with no points.
SCORE_EDGES: tuple[int, ...] = (
    1,
    10,
    25,
    50,
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    10_000_000,
    100_000_000,
)


# The bucket the adapter counts banned accounts in: they stand on no board, so they are
# counted apart from the score distribution.
BANNED_BUCKET = -1


def check_days(value: str | None) -> int:
    """The ``days`` query parameter: 1..365 (default 30); InvalidInput otherwise."""
    if value is None:
        return DAYS_DEFAULT
    if not value.isdigit() or len(value) > 3 or not 1 <= int(value) <= DAYS_MAX:
        raise InvalidInput(f"`days` is a whole number from 1 to {DAYS_MAX}.", field="days")
    return int(value)


@dataclass(frozen=True)
class DayRange:
    """The UTC days of a report: ``days`` days ending today (today included)."""

    first: date
    last: date

    @classmethod
    def ending(cls, now: datetime, days: int) -> DayRange:
        today = now.astimezone(UTC).date()
        return cls(today - timedelta(days=days - 1), today)

    @property
    def since(self) -> datetime:
        """The first instant of the range."""
        return _midnight(self.first)

    @property
    def week_first(self) -> date:
        """The first of the last 7 days (today included): the 7-day active count reads them."""
        return self.last - timedelta(days=WEEK_DAYS - 1)

    def each_day(self) -> list[date]:
        day, found = self.first, []
        while day <= self.last:
            found.append(day)
            day += timedelta(days=1)
        return found


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# -- what the adapter returns ---------------------------------------------------------------------


@dataclass(frozen=True)
class ActionFigures:
    action_id: str
    name: str
    completions: int
    points: int


@dataclass(frozen=True)
class HourRow:
    hour: datetime  # the hour's first instant, UTC
    completions: int
    points: int


@dataclass(frozen=True)
class DayRow:
    """One UTC day as the adapter counts it (only days with something to count)."""

    day: date
    completions: int
    points: int
    active: int  # distinct players with a completion that day


@dataclass(frozen=True)
class Bucket:
    low: int  # inclusive
    high: int | None  # exclusive; None: no upper bound
    players: int


@dataclass(frozen=True)
class Figures:
    """Everything the database counts for one report, from one snapshot."""

    actions: list[ActionFigures]
    hours: list[HourRow]
    days: list[DayRow]
    weekly_active: int  # distinct players over the last 7 days, today included
    registrations: dict[date, int]
    scores: dict[int, int]  # width_bucket index (BANNED_BUCKET: banned) -> players


@dataclass(frozen=True)
class NodeConnections:
    node_id: str
    connections: int
    reported_at: datetime


# -- the report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HourPoint:
    hour: datetime
    completions: int
    points: int


@dataclass(frozen=True)
class DayPoint:
    day: date
    completions: int
    points: int
    active: int
    registrations: int


@dataclass(frozen=True)
class Analytics:
    days: int
    generated_at: datetime
    actions: list[ActionFigures]
    hourly: list[HourPoint]  # the last 48 hours, oldest first, this hour included
    daily: list[DayPoint]  # every day of the range, oldest first
    weekly_active: int  # distinct players with a completion over the last 7 days (WAU)
    players: int  # every account
    banned: int  # banned accounts (not in ``scores``)
    scores: list[Bucket]  # accounts not banned, by score
    live: list[NodeConnections]

    @property
    def daily_active(self) -> int:
        """Distinct players with a completion today (UTC): the last day's DAU."""
        return self.daily[-1].active if self.daily else 0

    @property
    def live_total(self) -> int:
        return sum(n.connections for n in self.live)


def first_hour(now: datetime) -> datetime:
    """The first hour of the 48-hour series ending with the current hour."""
    current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return current - timedelta(hours=HOURS - 1)


def dense_hours(now: datetime, rows: Iterable[HourRow]) -> list[HourPoint]:
    """Every one of the last 48 hours (this one included), zeros where nothing happened."""
    start = first_hour(now)
    found = {r.hour.astimezone(UTC): r for r in rows}
    series = []
    for n in range(HOURS):
        hour = start + timedelta(hours=n)
        row = found.get(hour)
        series.append(HourPoint(hour, row.completions if row else 0, row.points if row else 0))
    return series


def dense_days(
    span: DayRange, rows: Iterable[DayRow], registrations: dict[date, int]
) -> list[DayPoint]:
    """Every day of ``span``, zeros where nothing happened."""
    found = {r.day: r for r in rows}
    series = []
    for day in span.each_day():
        row = found.get(day)
        series.append(
            DayPoint(
                day=day,
                completions=row.completions if row else 0,
                points=row.points if row else 0,
                active=row.active if row else 0,
                registrations=registrations.get(day, 0),
            )
        )
    return series


def score_buckets(counts: dict[int, int]) -> list[Bucket]:
    """Buckets from ``width_bucket(score, SCORE_EDGES)`` counts: 0 (no points), then each
    edge range up to the highest one holding a player (empty ones in between stay, so the
    bars keep their scale)."""
    counts = {b: n for b, n in counts.items() if b != BANNED_BUCKET}
    highest = max((b for b, n in counts.items() if n), default=0)
    buckets = [Bucket(0, 1, counts.get(0, 0))]
    for index in range(1, highest + 1):
        low = SCORE_EDGES[index - 1]
        high = SCORE_EDGES[index] if index < len(SCORE_EDGES) else None
        buckets.append(Bucket(low, high, counts.get(index, 0)))
    return buckets


def report(now: datetime, days: int, figures: Figures, live: list[NodeConnections]) -> Analytics:
    """The report as the API returns it, from what the database counted for ``days``."""
    span = DayRange.ending(now, days)
    return Analytics(
        days=days,
        generated_at=now,
        actions=figures.actions,
        hourly=dense_hours(now, figures.hours),
        daily=dense_days(span, figures.days, figures.registrations),
        weekly_active=figures.weekly_active,
        players=sum(figures.scores.values()),
        banned=figures.scores.get(BANNED_BUCKET, 0),
        scores=score_buckets(figures.scores),
        live=sorted(live, key=lambda n: n.node_id),
    )
