"""The live endpoint of this node: joins the hub (local sockets), the registry (limits across
nodes), the boards (each board's current top 10) and token checks. One per server process."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable

from app.core.board import Boards, Snapshot
from app.core.client_ip import client_ip
from app.core.errors import (
    AccountBanned,
    AccountGone,
    DomainError,
    SessionEnded,
    TokenExpired,
    Unauthorized,
)
from app.core.periodic import Periodic
from app.core.ports import retry_after_seconds
from app.core.sessions import Revocation, SessionGuard
from app.core.settings import Settings
from app.live import codes, frames
from app.live.codes import Close
from app.live.connection import LiveConnection, Phase, Refusal
from app.live.hub import Hub, HubTimings
from app.redis.live_registry import Member, Registry
from app.redis.rate_gate import LocalSlidingWindow

log = logging.getLogger(__name__)

# A board's current message (memory, else Redis, else PostgreSQL); raises BoardNotFound.
SnapshotSource = Callable[[str], Awaitable[Snapshot]]
BoardCheck = Callable[[str], bool]  # whether a board id names a board counting now

_RETRY_WHEN_FULL_SECONDS = 5
_MINUTE_MS = 60_000

# Every domain error a live connection can meet, and the close code that names it.
CLOSE_CODES: dict[type[DomainError], Close] = {
    TokenExpired: Close.TOKEN_EXPIRED,
    Unauthorized: Close.UNAUTHORIZED,
    SessionEnded: Close.SESSION_ENDED,
    AccountGone: Close.SESSION_ENDED,
    AccountBanned: Close.ACCOUNT_BANNED,
}


def close_code_for(error: DomainError) -> Close:
    return next(
        (CLOSE_CODES[kind] for kind in type(error).__mro__ if kind in CLOSE_CODES),
        Close.INTERNAL_ERROR,
    )


class LiveNode:
    def __init__(
        self,
        settings: Settings,
        boards: Boards,
        registry: Registry,
        current_snapshot: SnapshotSource,
        board_exists: BoardCheck,
        guard: SessionGuard | None = None,
    ) -> None:
        self._settings = settings
        # Checks each token, and says when a user's sessions end (their sockets close then).
        self.guard = guard or SessionGuard(settings.jwt_key, settings.access_token_ttl_seconds)
        self._boards = boards
        self.registry = registry
        self._current_snapshot = current_snapshot
        self._board_exists = board_exists
        self.auth_timeout = settings.ws_auth_timeout_seconds
        self.hub = Hub(
            HubTimings(
                ping_interval=settings.ws_ping_interval_seconds,
                pong_timeout=settings.ws_pong_timeout_seconds,
                send_timeout=settings.ws_send_timeout_seconds,
            ),
            max_connections=settings.ws_max_connections,
            max_per_user=settings.ws_max_per_user,
        )
        # Per node and in memory: counting attempts must cost no I/O before the upgrade.
        self._attempts = LocalSlidingWindow()
        self._tasks: set[asyncio.Task[None]] = set()
        self._periodic = Periodic()
        self._unlisten: Callable[[], None] | None = None
        self._unlisten_sessions: Callable[[], None] | None = None
        self.accepting = True

    @staticmethod
    def new_node_id() -> str:
        return secrets.token_hex(6)

    def start(self) -> None:
        self._unlisten = self._boards.listen(self.hub.publish)
        self._unlisten_sessions = self.guard.listen(self.sessions_ended)
        self.hub.start_sweeps(self._periodic)
        self._periodic.every(0.5, self.registry.flush, name="live-registry-flush")

    def protocol(self) -> LiveConnection:
        return LiveConnection(self, self._settings.ws_max_frame_bytes)

    def on_control(self, message: bytes) -> None:
        """A control message for this node: close one of its connections (another node
        registered a newer connection of the same user)."""
        member = Member.decode(message)
        if member is not None and member.node_id == self.registry.node_id:
            self.hub.close_ids(
                [member.conn_id], Close.REPLACED, "Replaced by a newer connection of this user."
            )

    def sessions_ended(self, revocation: Revocation) -> None:
        """A user's sessions ended (logout everywhere, a ban, a deletion): close their
        sockets on this node that were opened with a token issued before that moment."""
        error = revocation.error()
        for conn in self.hub.connections_of(revocation.user_id):
            if revocation.refuses(conn.issued_ms):
                conn.close(close_code_for(error), error.code)

    async def close(self, grace: float = 2.0) -> None:
        """Refuse new upgrades, close every socket with 1001, stop the background tasks."""
        self.accepting = False
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._unlisten_sessions is not None:
            self._unlisten_sessions()
            self._unlisten_sessions = None
        for task in self._tasks:
            task.cancel()
        await self.hub.close_all(Close.GOING_AWAY, "Server shutting down; reconnect.", grace)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._periodic.stop()
        await self.registry.flush()

    # -- Owner (called by connections) ---------------------------------------------------------

    def admit(self, conn: LiveConnection) -> None:
        if not self.accepting:
            raise Refusal(503, "Server shutting down; connect again.\n", _RETRY_WHEN_FULL_SECONDS)
        client = client_ip(conn.peer, conn.forwarded_for, self._settings.trusted_proxies)
        decision = self._attempts.hit(
            client, self._settings.ws_connects_per_ip_per_minute, _MINUTE_MS
        )
        if not decision.allowed:
            retry = retry_after_seconds(decision)
            raise Refusal(429, "Too many connection attempts; retry later.\n", retry)
        if not self.hub.has_room():
            raise Refusal(503, "This server is full; retry later.\n", _RETRY_WHEN_FULL_SECONDS)
        if not self._board_exists(conn.board):
            raise Refusal(404, "No such board.\n")

    def opened(self, conn: LiveConnection) -> None:
        self.hub.add(conn)

    def authenticate(self, conn: LiveConnection, token: str) -> None:
        task = asyncio.create_task(self._authenticate(conn, token))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def subscribe(self, conn: LiveConnection, board: str) -> None:
        if not self._board_exists(board):
            conn.write(frames.error_frame(codes.BOARD_NOT_FOUND, f"There is no board {board!r}."))
            return
        task = asyncio.create_task(self._subscribe(conn, board))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def closing(self, conn: LiveConnection) -> None:
        self.hub.leave(conn)

    def closed(self, conn: LiveConnection) -> None:
        if conn.user_id is not None:
            self.registry.forget(conn.user_id, conn.id)
        self.hub.remove(conn)

    # -- inside --------------------------------------------------------------------------------

    async def _authenticate(self, conn: LiveConnection, token: str) -> None:
        try:
            verified = self.guard.verify(token)
        except DomainError as error:
            conn.close(close_code_for(error), error.code)
            return
        identity = verified.identity
        try:
            evicted = await self.registry.register(identity.user_id, conn.id)
            snapshot = await self._current_snapshot(conn.board)
        except Exception:
            log.exception("could not start a live connection")
            conn.close(Close.INTERNAL_ERROR, "Try again later.")
            return
        if conn.phase is not Phase.AUTH:
            # Closed while we waited; its registry entry must not count against the user.
            self.registry.forget(identity.user_id, conn.id)
            return
        ended = self.guard.refusal(identity.user_id, verified.issued_ms)
        if ended is not None:  # the sessions ended while we waited
            self.registry.forget(identity.user_id, conn.id)
            conn.close(close_code_for(ended), ended.code)
            return
        conn.issued_ms = verified.issued_ms
        snapshot = self._newest(snapshot)
        mine = [m.conn_id for m in evicted if m.node_id == self.registry.node_id]
        self.hub.close_ids(mine, Close.REPLACED, "Replaced by a newer connection of this user.")
        self.hub.activate(conn, identity.user_id, snapshot)

    async def _subscribe(self, conn: LiveConnection, board: str) -> None:
        try:
            snapshot = await self._current_snapshot(board)
        except DomainError as error:
            conn.write(frames.error_frame(codes.BOARD_NOT_FOUND, error.message))
            return
        except Exception:
            log.exception("could not switch a live connection to board %s", board)
            conn.write(frames.error_frame("INTERNAL_ERROR", "Try again later."))
            return
        self.hub.watch(conn, self._newest(snapshot))

    def _newest(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot read, or this node's copy of that board if a newer one arrived while
        it was being read (its subscription is already delivering that board's changes)."""
        current = self._boards.get(snapshot.board).current
        if current is not None and current.order >= snapshot.order:
            return current
        return snapshot
