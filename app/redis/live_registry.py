"""Per-user connection limits across every node, kept in Redis.

Each authenticated connection is registered under its user as ``<node id>|<connection id>``;
``lua/live_register.lua`` adds it and evicts the user's oldest beyond the limit in one atomic
step, publishing each eviction on the owning node's control channel. A Redis failure never
refuses a connection: the limit then holds per node only (the hub's local check).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.redis.keys import Keys
from app.redis.scripts import Scripts

log = logging.getLogger(__name__)

# Entries of a node that died without unregistering expire with the user's set; a live
# connection never needs its entry refreshed, because eviction only ever removes the oldest.
REGISTRY_TTL_SECONDS = 24 * 3600
# Unregistrations waiting for the next flush; beyond this they are dropped (the TTL cleans up).
MAX_PENDING_FORGETS = 100_000


@dataclass(frozen=True)
class Member:
    node_id: str
    conn_id: str

    def encode(self) -> str:
        return f"{self.node_id}|{self.conn_id}"

    @classmethod
    def decode(cls, raw: bytes | str) -> Member | None:
        text = raw.decode() if isinstance(raw, bytes) else raw
        node_id, sep, conn_id = text.partition("|")
        return cls(node_id, conn_id) if sep else None


class Registry:
    def __init__(
        self, redis: Redis, scripts: Scripts, keys: Keys, node_id: str, max_per_user: int
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keys = keys
        self.node_id = node_id
        self._max_per_user = max_per_user
        self._forget: list[tuple[str, str]] = []

    @property
    def control_channel(self) -> str:
        return self._keys.live_control_channel(self.node_id)

    async def register(self, user_id: str, conn_id: str) -> list[Member]:
        """Record the connection; the user's connections it evicts (on any node)."""
        try:
            evicted = await self._scripts.live_register(
                user_id,
                Member(self.node_id, conn_id).encode(),
                self._max_per_user,
                REGISTRY_TTL_SECONDS,
            )
        except (RedisError, OSError) as error:
            log.warning("live registry unavailable (%s); per-user limit holds per node", error)
            return []
        return [m for m in (Member.decode(raw) for raw in evicted) if m is not None]

    def forget(self, user_id: str, conn_id: str) -> None:
        """Queue the removal of a closed connection (flushed in batches)."""
        if len(self._forget) < MAX_PENDING_FORGETS:
            self._forget.append((user_id, conn_id))

    async def flush(self) -> None:
        batch, self._forget = self._forget, []
        if not batch:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id, conn_id in batch:
                    pipe.zrem(
                        self._keys.live_connections(user_id),
                        Member(self.node_id, conn_id).encode(),
                    )
                await pipe.execute()
        except (RedisError, OSError) as error:
            log.warning("could not unregister %d live connections: %s", len(batch), error)
