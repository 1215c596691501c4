"""Sessions that end: the account guard every surface runs before trusting an access token.

An access token is a signed JWT: once issued, nothing can call it back. Ending a user's
sessions (logout everywhere, a ban, a deleted account) therefore records a moment, and every
node refuses that user's tokens issued before it. The moments live in PostgreSQL
(``session_revocations``, also written by triggers when a user is banned or deleted by any
means); each node keeps the recent ones in memory, so the check costs a dict lookup and no I/O:

- immediately, when the node that ended the sessions publishes it (every node's subscription
  delivers it to ``SessionGuard.learn``), and
- at the latest after one poll interval (``SESSION_POLL_SECONDS``, at most 5 s), for a message
  lost while Redis was away or a change made straight in the database.

Only moments newer than the access-token lifetime matter (older tokens have expired anyway),
so the set stays small. Listeners (the live node) hear of each new moment and close the
user's sockets opened with an older token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from app.core.errors import (
    AccountBanned,
    AccountGone,
    DomainError,
    SessionEnded,
    Unauthorized,
)
from app.core.tokens import Identity, VerifiedToken, verify_access_claims

log = logging.getLogger(__name__)

# A moment is kept this long past the token lifetime: clocks of nodes and database differ.
_CLOCK_MARGIN_MS = 60_000


class Reason(StrEnum):
    LOGOUT = "logout"  # logout everywhere
    BANNED = "banned"
    DELETED = "deleted"


@dataclass(frozen=True)
class Revocation:
    """The user's access tokens issued before ``not_before_ms`` (ms since the epoch) are
    refused, with the error ``reason`` names."""

    user_id: str
    not_before_ms: int
    reason: Reason

    def refuses(self, issued_ms: int) -> bool:
        return issued_ms < self.not_before_ms

    def error(self) -> DomainError:
        if self.reason is Reason.BANNED:
            return AccountBanned()
        if self.reason is Reason.DELETED:
            return AccountGone()
        return SessionEnded()

    def encode(self) -> bytes:
        return f"{self.user_id} {self.not_before_ms} {self.reason.value}".encode()

    @classmethod
    def decode(cls, data: bytes) -> Revocation | None:
        try:
            user_id, stamp, reason = data.decode().split(" ")
            return cls(user_id, int(stamp), Reason(reason))
        except ValueError:
            return None


class RevocationStore(Protocol):
    """Where the moments are recorded (PostgreSQL: app/db/sessions.py)."""

    async def recent(self, within_ms: int) -> list[Revocation]:
        """Every moment newer than ``within_ms`` ago."""
        ...

    async def end_sessions(self, user_id: str, reason: Reason, now_ms: int) -> Revocation:
        """Revoke every refresh-token family of the user and record the moment: the later of
        the store's clock and ``now_ms`` (this node's, which stamps its tokens)."""
        ...

    async def revoke_family(self, refresh_digest: bytes) -> None:
        """Revoke the family of this refresh token (nothing when it is unknown)."""
        ...

    async def ban(self, user_id: str, reason: str | None) -> Revocation | None:
        """Mark the user banned and end their sessions; None when there is no such user."""
        ...

    async def unban(self, user_id: str) -> bool:
        """Lift a ban; False when there is no such user."""
        ...

    async def revocation_of(self, user_id: str) -> Revocation | None: ...


class RevocationBus(Protocol):
    """Tells every node at once (Redis pub/sub: app/redis/sessions_bus.py). Never raises:
    a message lost is picked up by the nodes' poll."""

    async def publish(self, revocation: Revocation) -> None: ...


Listener = Callable[[Revocation], None]


def bearer_token(header: str | None) -> str:
    """The token in an ``Authorization: Bearer ...`` header."""
    if not header:
        raise Unauthorized()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Use the header `Authorization: Bearer <token>`.")
    return token.strip()


class SessionGuard:
    """Checks access tokens: signature, expiry, and whether the user's sessions were ended."""

    def __init__(
        self, secret: str, token_ttl_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._secret = secret
        self._keep_ms = token_ttl_seconds * 1000 + _CLOCK_MARGIN_MS
        self._clock = clock
        self._revoked: dict[str, Revocation] = {}
        self._listeners: list[Listener] = []

    # -- checks (no I/O) ---------------------------------------------------------------------

    async def authenticate(self, authorization: str | None) -> Identity:
        """The caller's identity from an ``Authorization`` header value; raises Unauthorized,
        TokenExpired, SessionEnded, AccountGone or AccountBanned. Needs no request context:
        any surface (Quart routes, the live node, an edge fast path) calls this one check."""
        return self.verify(bearer_token(authorization)).identity

    def verify(self, token: str) -> VerifiedToken:
        """A token that is valid and whose session has not been ended; raises otherwise."""
        verified = verify_access_claims(token, self._secret)
        revoked = self._revoked.get(verified.identity.user_id)
        if revoked is not None and revoked.refuses(verified.issued_ms):
            raise revoked.error()
        return verified

    def refusal(self, user_id: str, issued_ms: int) -> DomainError | None:
        """Why a token of ``user_id`` issued at ``issued_ms`` is refused now (None: it is not)."""
        revoked = self._revoked.get(user_id)
        return revoked.error() if revoked is not None and revoked.refuses(issued_ms) else None

    # -- what the guard knows ------------------------------------------------------------------

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every newly learned moment; returns the way to stop."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def learn(self, revocation: Revocation) -> None:
        """Take a moment in (from this node, a message, or the poll); listeners hear of it
        when it is newer than what was known."""
        known = self._revoked.get(revocation.user_id)
        if known is not None and known.not_before_ms > revocation.not_before_ms:
            return
        self._revoked[revocation.user_id] = revocation
        if known is not None and known.not_before_ms == revocation.not_before_ms:
            return  # the same moment again (its reason may have changed: an unban)
        for listener in list(self._listeners):
            try:
                listener(revocation)
            except Exception:
                log.exception("a session listener failed")

    def learn_message(self, data: bytes) -> None:
        """A message from another node (its bytes as ``Revocation.encode`` made them)."""
        revocation = Revocation.decode(data)
        if revocation is not None:
            self.learn(revocation)

    def learn_all(self, revocations: list[Revocation]) -> None:
        """The poll's answer: every recent moment. Forgets those past every token's life."""
        for revocation in revocations:
            self.learn(revocation)
        horizon = self.now_ms() - self._keep_ms
        for user_id in [u for u, r in self._revoked.items() if r.not_before_ms < horizon]:
            del self._revoked[user_id]

    @property
    def keep_ms(self) -> int:
        """How far back moments matter (the poll reads this window)."""
        return self._keep_ms

    @property
    def known(self) -> int:
        return len(self._revoked)

    def now_ms(self) -> int:
        return int(self._clock() * 1000)


class Sessions:
    """Ending sessions: records the moment, then tells this node and every other."""

    def __init__(self, guard: SessionGuard, store: RevocationStore, bus: RevocationBus) -> None:
        self.guard = guard
        self._store = store
        self._bus = bus

    async def logout(self, refresh_digest: bytes) -> None:
        """End one session: its refresh-token family. An unknown token is no error (logging
        out twice is harmless); its access token lives on until it expires (15 min)."""
        await self._store.revoke_family(refresh_digest)

    async def end_all(self, user_id: str, reason: Reason = Reason.LOGOUT) -> Revocation:
        """Log the user out everywhere: every refresh family revoked, every access token
        issued until now refused and every live socket of theirs closed, on every node."""
        revocation = await self._store.end_sessions(user_id, reason, self.guard.now_ms() + 1)
        await self.announce(revocation)
        return revocation

    async def ban(self, user_id: str, reason: str | None = None) -> bool:
        """Ban the user (``users.banned_at``) and end their sessions; False: no such user."""
        revocation = await self._store.ban(user_id, reason)
        if revocation is None:
            return False
        await self.announce(revocation)
        return True

    async def unban(self, user_id: str) -> bool:
        """Lift the ban: the user may log in again (tokens from before the ban stay refused,
        now as an ended session)."""
        if not await self._store.unban(user_id):
            return False
        revocation = await self._store.revocation_of(user_id)
        if revocation is not None:
            await self.announce(revocation)
        return True

    async def account_deleted(self, user_id: str) -> None:
        """Call after deleting a user: refuse their tokens everywhere now (a trigger recorded
        the moment; without this call the nodes' poll finds it within SESSION_POLL_SECONDS)."""
        revocation = await self._store.revocation_of(user_id)
        if revocation is not None:
            await self.announce(revocation)

    async def announce(self, revocation: Revocation) -> None:
        self.guard.learn(revocation)  # this node at once, even if the message is lost
        await self._bus.publish(revocation)

    async def poll(self) -> None:
        """Read every recent moment from the store (the periodic safety net)."""
        self.guard.learn_all(await self._store.recent(self.guard.keep_ms))
