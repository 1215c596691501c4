"""This node's live sockets: broadcast, heartbeat and deadlines. Knows nothing of Redis.

A broadcast encodes the frame once and hands the same bytes to every socket watching that
board without awaiting any of them (``LiveConnection.push``), so a slow or dead client costs
the others nothing. Each socket watches one board at a time (``conn.board``).
Deadlines (auth, pong, send) are checked by one periodic sweep rather than a timer per socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from app.core.board import Snapshot
from app.core.periodic import Periodic
from app.live import frames
from app.live.codes import Close
from app.live.connection import LiveConnection, Phase


@dataclass(frozen=True)
class HubTimings:
    ping_interval: float
    pong_timeout: float
    send_timeout: float

    @property
    def sweep_interval(self) -> float:
        # Fine enough that a deadline is enforced within a quarter of its length.
        return min(1.0, self.ping_interval / 4, self.pong_timeout / 4, self.send_timeout / 4)


class Hub:
    def __init__(self, timings: HubTimings, max_connections: int, max_per_user: int) -> None:
        self.timings = timings
        self.max_connections = max_connections
        self.max_per_user = max_per_user
        self._open: set[LiveConnection] = set()  # every socket past the handshake
        self._live: dict[LiveConnection, None] = {}  # authenticated
        # Authenticated sockets by the board they watch; ordered for broadcast.
        self._watching: dict[str, dict[LiveConnection, None]] = {}
        self._by_id: dict[str, LiveConnection] = {}
        self._by_user: dict[str, list[LiveConnection]] = {}
        self._next_ping = 0.0
        self._emptied = asyncio.Event()
        # Called once a broadcast's frame is written to every socket (the latency metric).
        self.after_broadcast: Callable[[Snapshot], None] | None = None

    # -- membership ---------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return len(self._open)

    @property
    def live_count(self) -> int:
        return len(self._live)

    def has_room(self) -> bool:
        return len(self._open) < self.max_connections

    def add(self, conn: LiveConnection) -> None:
        self._open.add(conn)
        self._by_id[conn.id] = conn

    def activate(self, conn: LiveConnection, user_id: str, snapshot: Snapshot | None) -> None:
        """Send the current snapshot and start receiving changes, in one step (no gap)."""
        first = frames.text_frame(snapshot.message) if snapshot is not None else b""
        conn.go_live(user_id, first)
        self._live[conn] = None
        self._watching.setdefault(conn.board, {})[conn] = None
        same_user = self._by_user.setdefault(user_id, [])
        same_user.append(conn)
        # Cross-node limits live in the registry; this holds even while Redis is away.
        for oldest in same_user[: max(0, len(same_user) - self.max_per_user)]:
            oldest.close(Close.REPLACED, "Replaced by a newer connection of this user.")

    def watch(self, conn: LiveConnection, snapshot: Snapshot) -> None:
        """Move a live socket to ``snapshot``'s board: say so, send that board's current
        message, and from then on that board's changes only (in one step: no gap)."""
        if conn not in self._live:
            return  # closing meanwhile
        self._unwatch(conn)
        conn.board = snapshot.board
        self._watching.setdefault(conn.board, {})[conn] = None
        conn.write(frames.subscribed_frame(snapshot.board, snapshot.period))
        conn.push(frames.text_frame(snapshot.message))

    def watchers(self, board: str) -> int:
        return len(self._watching.get(board, ()))

    def _unwatch(self, conn: LiveConnection) -> None:
        watching = self._watching.get(conn.board)
        if watching is not None:
            watching.pop(conn, None)
            if not watching:
                del self._watching[conn.board]

    def leave(self, conn: LiveConnection) -> None:
        """Stop sending to ``conn`` (it is closing); it still counts until its socket is gone."""
        self._live.pop(conn, None)
        self._unwatch(conn)
        if conn.user_id is not None:
            same_user = self._by_user.get(conn.user_id)
            if same_user and conn in same_user:
                same_user.remove(conn)
                if not same_user:
                    del self._by_user[conn.user_id]

    def remove(self, conn: LiveConnection) -> None:
        self.leave(conn)
        self._open.discard(conn)
        self._by_id.pop(conn.id, None)
        if not self._open:
            self._emptied.set()

    def connections_of(self, user_id: str) -> list[LiveConnection]:
        """The user's authenticated sockets on this node."""
        return list(self._by_user.get(user_id, ()))

    def close_ids(self, ids: Iterable[str], code: int, reason: str) -> None:
        for conn_id in ids:
            conn = self._by_id.get(conn_id)
            if conn is not None:
                conn.close(code, reason)

    # -- traffic ------------------------------------------------------------------------------

    def publish(self, snapshot: Snapshot) -> None:
        """Board listener: one encoding, one non-blocking write per socket watching it."""
        watching = self._watching.get(snapshot.board)
        if not watching:
            return
        frame = frames.text_frame(snapshot.message)
        for conn in watching:
            conn.push(frame)
        if self.after_broadcast is not None and self._live:
            self.after_broadcast(snapshot)

    def sweep(self, now: float) -> None:
        """Send due PINGs and close sockets past a deadline."""
        t = self.timings
        if now >= self._next_ping:
            self._next_ping = now + t.ping_interval
            for conn in self._live:
                conn.write(frames.PING)
                if conn.pong_deadline is None:
                    conn.pong_deadline = now + t.pong_timeout
        for conn in list(self._open):
            if not conn.is_open:
                continue  # already closing
            if conn.phase is Phase.AUTH and conn.auth_deadline and now > conn.auth_deadline:
                conn.close(Close.AUTH_TIMEOUT, "No AUTH frame in time.")
            elif conn.pong_deadline is not None and now > conn.pong_deadline:
                conn.close(Close.HEARTBEAT_TIMEOUT, "No PONG in time.")
            elif conn.paused_since is not None and now - conn.paused_since > t.send_timeout:
                conn.close(Close.TOO_SLOW, "Not reading its messages.")

    def start_sweeps(self, periodic: Periodic) -> None:
        """Sweep deadlines (and ping) every ``sweep_interval``; the first ping goes out one
        ping interval from now."""
        loop = asyncio.get_running_loop()
        self._next_ping = loop.time() + self.timings.ping_interval
        periodic.every(
            self.timings.sweep_interval, lambda: self._sweep_now(loop), name="live-sweeps"
        )

    async def _sweep_now(self, loop: asyncio.AbstractEventLoop) -> None:
        self.sweep(loop.time())

    async def close_all(self, code: int, reason: str, grace: float) -> None:
        """Close every socket (e.g. 1001 on shutdown); after ``grace`` seconds drop the rest."""
        for conn in list(self._open):
            conn.close(code, reason)
        if self._open:
            self._emptied.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self._emptied.wait()
        for conn in list(self._open):
            conn.abort()
