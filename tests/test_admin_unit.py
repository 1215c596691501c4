"""The admin core without servers: input rules, and when a correction reaches the rankings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.core import admin as core_admin
from app.core.admin import Correction
from app.core.audit import check_reason, decode_cursor, encode_cursor
from app.core.errors import InvalidInput
from app.core.ports import BoardScore, Committed
from app.core.tokens import Identity

ADMIN = Identity("00000000-0000-0000-0000-00000000000a", "root")
NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


@pytest.mark.parametrize("points", [0, 10_001, -10_001])
def test_points_out_of_range(points: int) -> None:
    with pytest.raises(InvalidInput):
        core_admin.check_points(points)


def test_points_in_range() -> None:
    assert core_admin.check_points(-10_000) == -10_000 and core_admin.check_points(1) == 1


def test_reasons() -> None:
    assert check_reason("  why  ") == "why"
    assert check_reason("x" * 500) == "x" * 500
    for bad in ("", "   ", None, "x" * 501):
        with pytest.raises(InvalidInput):
            check_reason(bad)
    assert check_reason("", required=False) is None


def test_cursors() -> None:
    assert decode_cursor(encode_cursor(42)) == 42
    assert decode_cursor(None) is None and decode_cursor("") is None
    for bad in ("-1", "abc", "1" * 20, "4.2"):
        with pytest.raises(InvalidInput):
            decode_cursor(bad)


def test_completion_ids() -> None:
    assert core_admin.check_completion_id("6F1C0000-0000-0000-0000-000000000001").startswith("6f1c")
    for bad in ("", "nope", "x" * 100):
        with pytest.raises(InvalidInput):
            core_admin.check_completion_id(bad)


class Store:
    def __init__(self, correction: Correction) -> None:
        self.correction = correction

    async def adjust(self, admin: Identity, user_id: str, points: int, reason: str) -> Correction:
        return self.correction

    async def remove_completion(self, *args: Any) -> Correction:
        return self.correction


class Ranking:
    def __init__(self, fails: bool = False) -> None:
        self.applied: list[Committed] = []
        self.fails = fails

    async def apply(self, committed: Committed) -> None:
        if self.fails:
            raise ConnectionError("redis away")
        self.applied.append(committed)


def correction(banned: bool = False) -> Correction:
    boards = (
        BoardScore("weekly", "2026-W48", 10, NOW + timedelta(days=1)),
        BoardScore("daily", "2026-11-28", 0, NOW - timedelta(hours=12)),  # a past period
    )
    committed = Committed("u", "alice", 10, NOW, -50, boards)
    return Correction(committed, 60, "h", 1, banned=banned)


async def test_a_correction_reaches_current_periods_only() -> None:
    ranking = Ranking()
    await core_admin.apply_correction(correction().committed, ranking, now=NOW)
    assert [b.board_id for b in ranking.applied[0].boards] == ["weekly"]


async def test_a_banned_players_correction_stays_out_of_the_rankings() -> None:
    ranking = Ranking()
    done = await core_admin.adjust_score(
        admin=ADMIN,
        user_id="u",
        points=5,
        reason="x",
        store=Store(correction(True)),
        ranking=ranking,
    )
    assert done.banned and ranking.applied == []


async def test_a_failed_apply_does_not_fail_the_committed_correction() -> None:
    done = await core_admin.remove_completion(
        admin=ADMIN,
        user_id="u",
        completion_id="6f1c0000-0000-0000-0000-000000000001",
        reason="x",
        store=Store(correction()),
        ranking=Ranking(fails=True),
    )
    assert done.committed.score == 10


async def test_an_admin_cannot_ban_themselves() -> None:
    with pytest.raises(InvalidInput):
        await core_admin.ban_user(
            admin=ADMIN,
            user_id=ADMIN.user_id,
            reason="x",
            store=None,  # type: ignore[arg-type]
            roster=None,  # type: ignore[arg-type]
            announce=None,  # type: ignore[arg-type]
            catalog=None,  # type: ignore[arg-type]
        )
