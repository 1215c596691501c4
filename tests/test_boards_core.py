"""Boards in the core: periods as pure functions of a UTC instant, cursors, ranks of a run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.boards import (
    BUILT_IN_BOARDS,
    Board,
    Cursor,
    RowKey,
    Window,
    check_limit,
    check_radius,
    check_tags,
    decode_cursor,
    new_board,
)
from app.core.errors import InvalidInput
from app.db.boards import Row, ranked

CUP = Board(
    "cup",
    "Cup",
    Window.TOURNAMENT,
    None,
    datetime(2026, 11, 20, 18, tzinfo=UTC),
    datetime(2026, 11, 22, 18, tzinfo=UTC),
)
PERIODIC = [b for b in BUILT_IN_BOARDS if b.window is not Window.ALL]
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("instant", "daily", "weekly", "monthly"),
    [
        ("2026-11-29T23:59:59.900Z", "2026-11-29", "2026-W48", "2026-11"),
        ("2026-11-30T00:00:00.000Z", "2026-11-30", "2026-W49", "2026-11"),
        ("2026-11-30T23:59:59.999999Z", "2026-11-30", "2026-W49", "2026-11"),
        ("2026-12-01T00:00:00Z", "2026-12-01", "2026-W49", "2026-12"),
        ("2027-01-01T00:00:00Z", "2027-01-01", "2026-W53", "2027-01"),
        ("2027-01-04T00:00:00Z", "2027-01-04", "2027-W01", "2027-01"),
        # Another zone's evening is already tomorrow in UTC: UTC decides.
        ("2026-11-29T20:00:00-05:00", "2026-11-30", "2026-W49", "2026-11"),
    ],
)
def test_periods_at_the_boundaries(instant: str, daily: str, weekly: str, monthly: str) -> None:
    boards = {b.id: b for b in BUILT_IN_BOARDS}
    moment = utc(instant)
    assert boards["daily"].period_at(moment).id == daily  # type: ignore[union-attr]
    assert boards["weekly"].period_at(moment).id == weekly  # type: ignore[union-attr]
    assert boards["monthly"].period_at(moment).id == monthly  # type: ignore[union-attr]
    assert boards["all-time"].period_at(moment).id == "all"  # type: ignore[union-attr]


@given(instants)
def test_a_period_contains_its_instant_and_the_next_starts_where_it_ends(moment) -> None:  # type: ignore[no-untyped-def]
    for board in PERIODIC:
        period = board.period_at(moment)
        assert period is not None and period.contains(moment)
        assert period.starts_at is not None and period.ends_at is not None
        last = board.period_at(period.ends_at - timedelta(microseconds=1))
        following = board.period_at(period.ends_at)
        assert last == period
        assert following is not None and following.starts_at == period.ends_at
        assert following.id > period.id  # ids sort in time order (archives list newest first)
        assert board.parse_period(period.id) == period


def test_a_tournament_has_one_period_from_its_start_up_to_its_end() -> None:
    assert CUP.period_at(CUP.starts_at - timedelta(microseconds=1)) is None  # type: ignore[operator]
    period = CUP.period_at(CUP.starts_at)  # type: ignore[arg-type]
    assert period is not None and (period.id, period.ends_at) == ("cup", CUP.ends_at)
    assert CUP.period_at(CUP.ends_at - timedelta(microseconds=1)) == period  # type: ignore[operator]
    assert CUP.period_at(CUP.ends_at) is None  # type: ignore[arg-type]
    assert CUP.parse_period("cup") == period


def test_an_ended_board_is_no_longer_open() -> None:
    ended = Board("q", "Q", Window.DAY, "quiz", ended_at=utc("2026-11-18T12:00:00Z"))
    assert ended.current_period(utc("2026-11-18T11:59:59Z")) is not None
    assert ended.current_period(utc("2026-11-18T12:00:00Z")) is None


@pytest.mark.parametrize(
    ("board_id", "text"),
    [
        ("daily", "2026-02-30"),
        ("daily", "2026-2-3"),
        ("daily", "2026-W01"),
        ("weekly", "2026-W54"),
        ("weekly", "2025-W53"),  # 2025 has 52 ISO weeks
        ("weekly", "2026-W1"),
        ("monthly", "2026-13"),
        ("monthly", "2026-11-01"),
        ("all-time", "2026"),
        ("daily", "x" * 1000),
        ("daily", "2026-11-29\n"),
    ],
)
def test_a_malformed_period_is_refused(board_id: str, text: str) -> None:
    board = next(b for b in BUILT_IN_BOARDS if b.id == board_id)
    with pytest.raises(InvalidInput) as refused:
        board.parse_period(text)
    assert refused.value.details == {"field": "period"}
    assert len(refused.value.message) < 200


def test_new_boards_are_checked() -> None:
    start, end = utc("2026-11-20T18:00:00Z"), utc("2026-11-22T18:00:00Z")
    assert (
        new_board("cup", "Cup", "tournament", starts_at=start, ends_at=end).window
        is Window.TOURNAMENT
    )
    for bad in (
        lambda: new_board("Bad Id", "x", "day"),
        lambda: new_board("ok", "", "day"),
        lambda: new_board("ok", "x", "fortnight"),
        lambda: new_board("ok", "x", "day", action_tag="Not A Tag"),
        lambda: new_board("ok", "x", "tournament", starts_at=start),
        lambda: new_board("ok", "x", "tournament", starts_at=end, ends_at=start),
        lambda: new_board("ok", "x", "day", starts_at=start, ends_at=end),
        lambda: new_board("everything", "x", "all"),
    ):
        with pytest.raises(InvalidInput):
            bad()
    assert new_board("quiz-all", "x", "all", action_tag="quiz").is_all_time is False


def test_tags_are_slugs_without_repeats() -> None:
    assert check_tags(["quiz", "weekend", "quiz"]) == ("quiz", "weekend")
    with pytest.raises(InvalidInput):
        check_tags(["Quiz!"])
    with pytest.raises(InvalidInput):
        check_tags([f"t{i}" for i in range(17)])


# -- cursors -------------------------------------------------------------------------------------

KEY = RowKey(120, 1_795_000_000_123_456, "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f")


def test_a_cursor_round_trips_and_is_bound_to_its_board_and_period() -> None:
    text = Cursor("weekly", "2026-W48", KEY).encode()
    assert decode_cursor(text, "weekly", "2026-W48") == Cursor("weekly", "2026-W48", KEY)
    assert len(text) < 120 and "=" not in text
    with pytest.raises(InvalidInput):
        decode_cursor(text, "weekly", "2026-W47")
    with pytest.raises(InvalidInput):
        decode_cursor(text, "daily", "2026-W48")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not base64!",
        "A" * 201,
        "eyJ4IjoxfQ",  # base64 of another shape
        Cursor("weekly", "2026-W48", RowKey(-1, 1, KEY.user_id)).encode(),
        Cursor("weekly", "2026-W48", RowKey(1, 1, "not-a-uuid")).encode(),
        Cursor("weekly", "2026-W48", RowKey(1, 1, KEY.user_id.upper())).encode(),
        Cursor("weekly", "2026-W48", RowKey(10**19, 1, KEY.user_id)).encode(),
    ],
)
def test_a_bad_cursor_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        decode_cursor(text, "weekly", "2026-W48")
    assert refused.value.details == {"field": "cursor"}


@given(
    st.integers(min_value=1, max_value=10**15),
    st.integers(min_value=0, max_value=9 * 10**15),
    st.uuids(),
)
def test_any_row_key_round_trips(score: int, reached_us: int, user: uuid.UUID) -> None:
    key = RowKey(score, reached_us, str(user))
    assert decode_cursor(Cursor("b", "all", key).encode(), "b", "all").after == key


def test_limits_and_radius_are_bounded() -> None:
    assert (check_limit(None), check_limit("1"), check_limit("100")) == (10, 1, 100)
    assert (check_radius(None), check_radius("0"), check_radius("25")) == (5, 0, 25)
    for bad in ("0", "101", "-1", "1e2", "ten", " 5", "00001"):
        with pytest.raises(InvalidInput):
            check_limit(bad)
    with pytest.raises(InvalidInput):
        check_radius("26")


# -- ranks of a run ------------------------------------------------------------------------------


def rows(*scores: int) -> list[Row]:
    moment = utc("2026-11-18T10:00:00Z")
    return [Row(str(uuid.uuid4()), f"u{i}", s, moment) for i, s in enumerate(scores)]


@given(st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=30), st.data())
def test_a_run_anywhere_in_the_board_gets_the_ranks_of_the_whole_board(scores, data) -> None:  # type: ignore[no-untyped-def]
    board = sorted(scores, reverse=True)
    start = data.draw(st.integers(min_value=0, max_value=len(board) - 1))
    end = data.draw(st.integers(min_value=start + 1, max_value=len(board)))
    expected = [1 + sum(1 for other in board if other > s) for s in board[start:end]]
    top = board[start]
    above = sum(1 for s in board if s > top)
    at_or_above = sum(1 for s in board if s >= top)
    got = [e.rank for e in ranked(rows(*board[start:end]), above, at_or_above)]
    assert got == expected
