"""This node's copy of each board's current top-10 message: what GET serves and WebSockets push.

Messages arrive as the exact bytes the apply script published; the GET bodies are derived from
them once per change, so serving a read does no encoding and no I/O. Every board has its own
``Board`` (its current period's message); ``Boards`` routes each published message to its
board, so a node still holds one subscription for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from app.core.boards import ALL_PERIOD, ALL_TIME

Listener = Callable[["Snapshot"], None]


@dataclass(frozen=True)
class Snapshot:
    epoch: str
    version: int
    message: bytes  # the LEADERBOARD_UPDATE frame, exactly as clients receive it
    body: bytes  # the GET /api/leaderboard response body (no board named: today's shape)
    users: list[dict[str, Any]]
    board: str = ALL_TIME
    period: str = ALL_PERIOD
    board_body: bytes = b""  # the body for ?board=...: today's shape plus board and period

    @property
    def order(self) -> tuple[str, int, int]:
        # A later period first (its ids sort in time order), then the epoch, which is the
        # Redis time at which it started, then the version within it.
        return (self.period, int(self.epoch or 0), self.version)

    @property
    def etag(self) -> str:
        return f'"{self.epoch}-{self.version}"'


def snapshot_from_message(message: bytes) -> Snapshot:
    parsed = orjson.loads(message)
    data = parsed["data"]
    # Messages published before boards existed name neither: they are the all-time board's.
    board = str(parsed.get("board") or ALL_TIME)
    period = str(parsed.get("period") or ALL_PERIOD)
    shape = {
        "users": data["users"],
        "updatedAt": data["updatedAt"],
        "version": parsed["version"],
        "epoch": parsed["epoch"],
    }
    return Snapshot(
        epoch=str(parsed["epoch"]),
        version=int(parsed["version"]),
        message=message,
        body=orjson.dumps(shape),
        users=data["users"],
        board=board,
        period=period,
        board_body=orjson.dumps(shape | {"board": board, "period": period}),
    )


def message_from_users(
    users: list[dict[str, Any]],
    updated_at: str | None,
    board: str = ALL_TIME,
    period: str = ALL_PERIOD,
) -> bytes:
    """A message built here rather than by Redis (the database fallback, an archived period);
    epoch 0 is older than any epoch Redis starts, so the first real message replaces it."""
    return orjson.dumps(
        {
            "type": "LEADERBOARD_UPDATE",
            "board": board,
            "period": period,
            "epoch": "0",
            "version": 0,
            "data": {"users": users, "updatedAt": updated_at},
        }
    )


class Board:
    """One board's current message on this node."""

    def __init__(self, board_id: str = ALL_TIME) -> None:
        self.id = board_id
        self.current: Snapshot | None = None
        self._listeners: list[Listener] = []

    def offer(self, message: bytes | str) -> bool:
        """Take the message if it is newer than the current one; True when taken."""
        # redis-py types replies as bytes or str; ours are bytes (no decode_responses).
        return self.take(
            snapshot_from_message(message if isinstance(message, bytes) else message.encode())
        )

    def take(self, snapshot: Snapshot) -> bool:
        if self.current is not None and snapshot.order <= self.current.order:
            return False
        self.current = snapshot
        for listener in list(self._listeners):
            listener(snapshot)
        return True

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every newer snapshot; returns a function that stops it."""
        self._listeners.append(listener)
        return lambda: self.unlisten(listener)

    def unlisten(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)


class Boards:
    """Every board's ``Board`` on this node, by board id; the all-time one always exists."""

    def __init__(self, all_time: Board | None = None) -> None:
        self.all_time = all_time or Board()
        self._boards: dict[str, Board] = {ALL_TIME: self.all_time}
        self._listeners: list[Listener] = []

    def get(self, board_id: str) -> Board:
        """The board's state (created empty the first time it is named)."""
        board = self._boards.get(board_id)
        if board is None:
            board = self._boards[board_id] = Board(board_id)
            for listener in self._listeners:
                board.listen(listener)
        return board

    def offer(self, message: bytes | str) -> bool:
        """Route a published message to its board; True when that board took it."""
        snapshot = snapshot_from_message(
            message if isinstance(message, bytes) else message.encode()
        )
        return self.get(snapshot.board).take(snapshot)

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every newer snapshot of any board."""
        self._listeners.append(listener)
        for board in self._boards.values():
            board.listen(listener)

        def stop() -> None:
            self._listeners.remove(listener)
            for board in self._boards.values():
                board.unlisten(listener)

        return stop

    def __iter__(self) -> Iterator[Board]:
        return iter(list(self._boards.values()))
