"""This node's copy of the current top-10 message: what GET serves and WebSockets push.

Messages arrive as the exact bytes the apply script published; the GET body is derived from
them once per change, so serving a read does no encoding and no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

Listener = Callable[["Snapshot"], None]


@dataclass(frozen=True)
class Snapshot:
    epoch: str
    version: int
    message: bytes  # the LEADERBOARD_UPDATE frame, exactly as clients receive it
    body: bytes  # the GET /api/leaderboard response body
    users: list[dict[str, Any]]

    @property
    def order(self) -> tuple[int, int]:
        # Epochs are the Redis time at which they started, so a later epoch sorts higher.
        return (int(self.epoch or 0), self.version)

    @property
    def etag(self) -> str:
        return f'"{self.epoch}-{self.version}"'


def snapshot_from_message(message: bytes) -> Snapshot:
    parsed = orjson.loads(message)
    data = parsed["data"]
    body = orjson.dumps(
        {
            "users": data["users"],
            "updatedAt": data["updatedAt"],
            "version": parsed["version"],
            "epoch": parsed["epoch"],
        }
    )
    return Snapshot(str(parsed["epoch"]), int(parsed["version"]), message, body, data["users"])


def message_from_users(users: list[dict[str, Any]], updated_at: str | None) -> bytes:
    """A message built here rather than by Redis (the database fallback); epoch 0 is older
    than any epoch Redis starts, so the first real message replaces it."""
    return orjson.dumps(
        {
            "type": "LEADERBOARD_UPDATE",
            "epoch": "0",
            "version": 0,
            "data": {"users": users, "updatedAt": updated_at},
        }
    )


class Board:
    def __init__(self) -> None:
        self.current: Snapshot | None = None
        self._listeners: list[Listener] = []

    def offer(self, message: bytes | str) -> bool:
        """Take the message if it is newer than the current one; True when taken."""
        # redis-py types replies as bytes or str; ours are bytes (no decode_responses).
        snapshot = snapshot_from_message(
            message if isinstance(message, bytes) else message.encode()
        )
        if self.current is not None and snapshot.order <= self.current.order:
            return False
        self.current = snapshot
        for listener in list(self._listeners):
            listener(snapshot)
        return True

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every newer snapshot; returns a function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)
