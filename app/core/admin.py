"""Operators' corrections: adjust a score, remove a completion (and, with bans, hide a player).

Each is validated here, committed by the store in one transaction with its audit entry, then
written into the rankings by the same apply a completion uses, so every board, the live top 10
and the reconciler agree. As with a completion, once the commit succeeded the answer is
success: a failed apply is repaired by the reconciler.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from app.core.audit import check_reason
from app.core.board_reads import BoardCatalog
from app.core.boards import ALL_PERIOD, ALL_TIME
from app.core.errors import InvalidInput
from app.core.ports import Committed, RankingCache, RestoredStanding
from app.core.tokens import Identity

log = logging.getLogger(__name__)

ADJUST_MAX = 10_000


@dataclass(frozen=True)
class Correction:
    """A committed correction: the user's new standing (as a completion's commit reports it,
    so the same apply writes it into every ranking; a board score of 0 means the user left
    that board), what was recorded, and its audit entry."""

    committed: Committed
    previous_score: int
    history_id: str  # the adjustment's history row, or the removed completion's id
    audit_id: int
    action_id: str | None = None  # a removed completion's action
    completed_at: datetime | None = None
    # A banned player is in no ranking: the correction is written to PostgreSQL only, and an
    # unban brings the corrected standing back.
    banned: bool = False


class CorrectionStore(Protocol):
    async def adjust(
        self, admin: Identity, user_id: str, points: int, reason: str
    ) -> Correction: ...

    async def remove_completion(
        self, admin: Identity, user_id: str, completion_id: str, reason: str
    ) -> Correction: ...


def check_points(points: int) -> int:
    if points == 0 or not -ADJUST_MAX <= points <= ADJUST_MAX:
        raise InvalidInput(
            f"`points` is a whole number from -{ADJUST_MAX} to {ADJUST_MAX}, not 0.",
            field="points",
        )
    return points


def check_completion_id(text: str) -> str:
    try:
        if len(text) <= 36:
            return str(uuid.UUID(text))
    except ValueError:
        pass
    raise InvalidInput("A completion id is a UUID.", field="completionId")


async def adjust_score(
    *,
    admin: Identity,
    user_id: str,
    points: int,
    reason: str,
    store: CorrectionStore,
    ranking: RankingCache,
) -> Correction:
    """Add (or take away) points on the user's all-time score, audited with ``reason``."""
    correction = await store.adjust(
        admin, user_id, check_points(points), check_reason(reason) or ""
    )
    if not correction.banned:
        await apply_correction(correction.committed, ranking)
    return correction


async def remove_completion(
    *,
    admin: Identity,
    user_id: str,
    completion_id: str,
    reason: str,
    store: CorrectionStore,
    ranking: RankingCache,
) -> Correction:
    """Delete a completion and its points from every board it counted on, audited."""
    correction = await store.remove_completion(
        admin, user_id, check_completion_id(completion_id), check_reason(reason) or ""
    )
    if not correction.banned:
        await apply_correction(correction.committed, ranking)
    return correction


async def apply_correction(
    committed: Committed, ranking: RankingCache, *, now: datetime | None = None
) -> None:
    """Write the corrected standing into the rankings of current periods (a past period is
    read from PostgreSQL only). Never fails: the commit stands and the reconciler repairs."""
    now = now or datetime.now(UTC)
    current = tuple(b for b in committed.boards if b.ends_at is None or b.ends_at > now)
    try:
        await ranking.apply(
            Committed(
                committed.user_id,
                committed.username,
                committed.score,
                committed.reached_at,
                committed.points,
                current,
            )
        )
    except Exception:
        log.warning("could not apply a correction to the rankings", exc_info=True)


# -- finding users -------------------------------------------------------------------------------

SEARCH_MAX = 50
HISTORY_MAX = 500


@dataclass(frozen=True)
class UserSummary:
    user_id: str
    username: str
    role: str
    score: int
    created_at: datetime
    banned_at: datetime | None = None


@dataclass(frozen=True)
class HistoryEntry:
    """One row of a user's score history: a completion (removable by its id) or an
    operator's adjustment."""

    id: str
    kind: str  # 'completion' or 'adjustment'
    action_id: str | None
    action_name: str | None
    points: int
    created_at: datetime
    reason: str | None


@dataclass(frozen=True)
class UserDetail:
    user: UserSummary
    rank: int | None  # all-time; None: no points (or banned)
    history: list[HistoryEntry]
    history_total: int
    ban_reason: str | None = None


def check_search(query: str | None) -> str:
    text = (query or "").strip()
    if not 1 <= len(text) <= 50:
        raise InvalidInput(
            "`query` is 1 to 50 characters: the start of a username, or a user id.", field="query"
        )
    return text


# -- bans ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BanChange:
    """A ban or unban as committed: who, whether it changed anything, its audit entry, and
    (an unban) the standings to write back into the rankings."""

    user_id: str
    username: str
    changed: bool  # False: the account already was (not) banned; nothing was recorded
    banned_at: datetime | None
    audit_id: int | None = None
    standings: tuple[RestoredStanding, ...] = ()


CurrentPeriods = list[tuple[str, str, datetime | None]]  # (board, period, when it ends)


class BanStore(Protocol):
    async def ban(
        self, admin: Identity, user_id: str, reason: str, current: CurrentPeriods
    ) -> BanChange:
        """Mark the user banned (with the audit entry); NotFound for no such user."""
        ...

    async def unban(
        self, admin: Identity, user_id: str, reason: str, current: CurrentPeriods
    ) -> BanChange:
        """Lift the ban (with the audit entry) and return the user's standings on the
        all-time board and the ``current`` periods; NotFound for no such user."""
        ...


class Roster(Protocol):
    """The rankings' side of a ban: take a user out, or write their standings back."""

    async def remove_user(
        self, user_id: str, periods: list[tuple[str, str]], *, all_time: bool = True
    ) -> bool: ...

    async def restore_user(self, standings: list[RestoredStanding]) -> bool: ...


Announce = Callable[[str], Awaitable[None]]  # tell every node the user's sessions changed


def current_periods(catalog: BoardCatalog, now: datetime) -> CurrentPeriods:
    """(board, current period, when it ends) of every board counting now but all time."""
    return [(b.id, p.id, p.ends_at) for b, p in catalog.open_at(now) if not b.is_all_time]


async def ban_user(
    *,
    admin: Identity,
    user_id: str,
    reason: str,
    store: BanStore,
    roster: Roster,
    announce: Announce,
    catalog: BoardCatalog,
) -> BanChange:
    """Ban a player: refused everywhere at once (tokens, refresh, sockets closed on every
    node), gone from every board (the database's reads skip banned users; the rankings drop
    them now and the live top 10 follows). Their history stays, for an unban."""
    if user_id == admin.user_id:
        raise InvalidInput("An admin cannot ban themselves.", field="userId")
    periods = current_periods(catalog, datetime.now(UTC))
    change = await store.ban(admin, user_id, check_reason(reason) or "", periods)
    await _quietly(announce(user_id), "announce a ban")
    await _quietly(roster.remove_user(user_id, [(b, p) for b, p, _ in periods]), "unrank")
    return change


async def unban_user(
    *,
    admin: Identity,
    user_id: str,
    reason: str,
    store: BanStore,
    roster: Roster,
    announce: Announce,
    catalog: BoardCatalog,
) -> BanChange:
    """Lift a ban: the player may log in again and is back on every board with the
    history they had (tokens from before the ban stay refused)."""
    periods = current_periods(catalog, datetime.now(UTC))
    change = await store.unban(admin, user_id, check_reason(reason) or "", periods)
    if change.changed:
        await _quietly(announce(user_id), "announce an unban")
        await _quietly(roster.restore_user(list(change.standings)), "re-rank")
        # Where the database has no standing, the rankings must have none either (a
        # completion that raced the ban may have put one there, and been removed since).
        held = {(s.board_id, s.period) for s in change.standings}
        absent = [(b, p) for b, p, _ in periods if (b, p) not in held]
        await _quietly(
            roster.remove_user(user_id, absent, all_time=(ALL_TIME, ALL_PERIOD) not in held),
            "clear stale standings",
        )
    return change


# After a ban, the user is taken out of the rankings again after these delays (seconds): a
# completion or correction that passed its checks before the ban may commit and apply just
# after it. The guard refuses every request that starts after the ban, so the window is the
# length of a request; the reconciler (which skips banned users) is the last resort.
SWEEP_DELAYS = (1.0, 3.0)


async def sweep_banned(
    user_id: str,
    periods: list[tuple[str, str]],
    *,
    is_banned: Callable[[str], Awaitable[bool]],
    roster: Roster,
    delays: tuple[float, ...] = SWEEP_DELAYS,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> None:
    """Take a banned user out of the rankings again after each delay, while still banned."""
    pause = sleep or asyncio.sleep
    waited = 0.0
    for delay in delays:
        await pause(delay - waited)
        waited = delay
        try:
            if not await is_banned(user_id):
                return  # unbanned meanwhile: the unban restored the rankings
            await roster.remove_user(user_id, periods)
        except Exception:
            log.warning("a ban's follow-up sweep failed", exc_info=True)


async def _quietly(work: Awaitable[object], what: str) -> None:
    """After the commit: a failure is logged, never raised (the commit stands; the guard's
    poll and the reconciler finish the job)."""
    try:
        await work
    except Exception:
        log.warning("could not %s after it was committed", what, exc_info=True)
