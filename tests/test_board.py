"""The node's in-memory boards: messages routed by board, newer periods win, bodies built once."""

from __future__ import annotations

import orjson

from app.core.board import Board, Boards, Snapshot, message_from_users


def message(board: str | None, period: str | None, epoch: str, version: int) -> bytes:
    parsed: dict[str, object] = {"type": "LEADERBOARD_UPDATE", "epoch": epoch, "version": version}
    if board is not None:
        parsed |= {"board": board, "period": period}
    users = [{"userId": "u1", "username": "ann", "score": version, "rank": 1}]
    parsed["data"] = {"users": users, "updatedAt": "2026-11-30T00:00:00.000Z"}
    return orjson.dumps(parsed)


def test_a_message_naming_no_board_is_the_all_time_boards_with_todays_body() -> None:
    boards = Boards()
    assert boards.offer(message(None, None, "5", 1))
    snapshot = boards.all_time.current
    assert snapshot is not None and (snapshot.board, snapshot.period) == ("all-time", "all")
    assert orjson.loads(snapshot.body) == {
        "users": snapshot.users,
        "updatedAt": "2026-11-30T00:00:00.000Z",
        "version": 1,
        "epoch": "5",
    }
    assert list(orjson.loads(snapshot.board_body)) == [
        "users",
        "updatedAt",
        "version",
        "epoch",
        "board",
        "period",
    ]


def test_messages_go_to_their_board_and_a_later_period_always_wins() -> None:
    boards = Boards()
    seen: list[Snapshot] = []
    boards.listen(seen.append)
    assert boards.offer(message("weekly", "2026-W48", "900", 7))
    # The new week starts under a new epoch; a late message of the old week is ignored even
    # when its epoch is newer (the old week rebuilt after the boundary).
    assert boards.offer(message("weekly", "2026-W49", "1000", 1))
    assert not boards.offer(message("weekly", "2026-W48", "2000", 8))
    assert not boards.offer(message("weekly", "2026-W49", "1000", 1))
    assert boards.offer(message("weekly", "2026-W49", "1000", 2))
    weekly = boards.get("weekly").current
    assert weekly is not None and (weekly.period, weekly.version) == ("2026-W49", 2)
    assert boards.all_time.current is None
    assert [(s.board, s.period, s.version) for s in seen] == [
        ("weekly", "2026-W48", 7),
        ("weekly", "2026-W49", 1),
        ("weekly", "2026-W49", 2),
    ]


def test_a_listener_can_stop() -> None:
    board = Board()
    seen: list[Snapshot] = []
    stop = board.listen(seen.append)
    board.offer(message_from_users([], None))
    stop()
    board.offer(message(None, None, "9", 1))
    assert len(seen) == 1
