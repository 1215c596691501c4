"""app/core/admin_catalog.py: what an edit of a board or an action may change (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.core.admin_catalog import (
    BoardChange,
    action_changes,
    action_details,
    changed_board,
    edited_action,
)
from app.core.boards import Board, Window, new_board
from app.core.catalog import Action
from app.core.errors import InvalidInput

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


def cup(starts: datetime, ends: datetime) -> Board:
    return new_board("cup", "Cup", "tournament", starts_at=starts, ends_at=ends)


def refused(board: Board, change: BoardChange) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        changed_board(board, change, NOW)
    return caught.value


def test_any_board_can_be_renamed_but_not_to_nothing() -> None:
    daily = Board("daily", "Today", Window.DAY)
    assert changed_board(daily, BoardChange(name="  Day  "), NOW).name == "Day"
    assert refused(daily, BoardChange(name="   ")).details["field"] == "name"
    assert "Nothing to change" in refused(daily, BoardChange()).message
    assert refused(daily, BoardChange(ends_at=NOW + HOUR)).details["field"] == "startsAt"


def test_a_tournament_range_moves_only_where_nothing_counted_yet() -> None:
    upcoming = cup(NOW + HOUR, NOW + 5 * HOUR)
    moved = changed_board(upcoming, BoardChange(starts_at=NOW + 2 * HOUR), NOW)
    assert moved.starts_at == NOW + 2 * HOUR and moved.ends_at == NOW + 5 * HOUR
    assert "past" in refused(upcoming, BoardChange(starts_at=NOW - HOUR)).message
    assert refused(upcoming, BoardChange(ends_at=NOW + HOUR / 2)).details["field"] == "endsAt"

    running = cup(NOW - HOUR, NOW + HOUR)
    assert (
        changed_board(running, BoardChange(ends_at=NOW + 3 * HOUR), NOW).ends_at == NOW + 3 * HOUR
    )
    assert "started" in refused(running, BoardChange(starts_at=NOW + HOUR / 2)).message
    assert "past" in refused(running, BoardChange(ends_at=NOW - HOUR / 2)).message

    over = cup(NOW - 3 * HOUR, NOW - HOUR)
    assert "finished" in refused(over, BoardChange(ends_at=NOW + HOUR)).message
    ended = Board("cup", "Cup", Window.TOURNAMENT, None, NOW - HOUR, NOW + HOUR, NOW)
    assert "ended" in refused(ended, BoardChange(ends_at=NOW + 2 * HOUR)).message
    assert changed_board(ended, BoardChange(name="Old cup"), NOW).ended_at == NOW
    naive = datetime(2026, 11, 29, 20)  # the point: no time zone
    assert "time zone" in refused(upcoming, BoardChange(ends_at=naive)).message


QUIZ = Action(
    "q1", "Quiz", 10, verification="quiz", questions=("Capital of France?",), answers=("Paris",)
)


def test_an_edit_is_checked_as_a_whole() -> None:
    assert edited_action(QUIZ, {"points": 20}).points == 20
    assert edited_action(QUIZ, {"points": 20}).answers == ("Paris",)
    with pytest.raises(InvalidInput) as caught:
        edited_action(QUIZ, {"points": 0})
    assert caught.value.details["field"] == "points"
    # New questions without answers keep the old key, which must still match in number.
    with pytest.raises(InvalidInput) as caught:
        edited_action(QUIZ, {"questions": ["a?", "b?"]})
    assert caught.value.details["field"] == "answers"
    # Leaving quiz drops the questions and the key.
    claim = edited_action(QUIZ, {"verification": "claim"})
    assert claim.questions == () and claim.answers == ()
    with pytest.raises(InvalidInput):
        edited_action(QUIZ, {})
    with pytest.raises(InvalidInput):
        edited_action(QUIZ, {"id": "other"})


def test_the_answer_key_never_reaches_the_audit_details() -> None:
    changed = edited_action(QUIZ, {"answers": ["paris"], "points": 15})
    changes = action_changes(QUIZ, changed)
    assert changes == {"points": [10, 15], "answers": "changed"}
    details = action_details(QUIZ)
    assert details["answers"] == 1 and "Paris" not in str(details)
