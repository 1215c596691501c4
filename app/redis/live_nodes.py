"""How many live connections each node holds now, for the admin analytics.

Each node writes its count into one Redis hash every few seconds (field: node id, value:
``<count>|<unix ms>``); a reader takes the whole hash and drops the entries of nodes that
stopped reporting (shut down or dead), so the figure never counts a node that is gone. One
small key for the whole cluster: no scan of the per-user registry keys.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.analytics import NodeConnections
from app.redis.keys import Keys

log = logging.getLogger(__name__)

REPORT_SECONDS = 5.0
# A node missing three reports in a row is gone.
STALE_SECONDS = 3 * REPORT_SECONDS
_KEY_TTL_SECONDS = 3600


class LiveNodes:
    def __init__(self, redis: Redis, keys: Keys, node_id: str) -> None:
        self._redis = redis
        self._key = keys.live_nodes
        self.node_id = node_id

    async def report(self, connections: int) -> None:
        """Record this node's count now (one round trip). A Redis outage is reported by the
        health checks already; here it only means the figure is missing until Redis is back."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hset(self._key, self.node_id, f"{connections}|{int(time.time() * 1000)}")
                pipe.expire(self._key, _KEY_TTL_SECONDS)
                await pipe.execute()
        except (RedisError, OSError) as error:
            log.debug("could not report this node's live count: %s", error)

    async def forget(self) -> None:
        """Remove this node's entry (at shutdown)."""
        try:
            await self._redis.hdel(self._key, self.node_id)
        except (RedisError, OSError) as error:
            log.warning("could not remove this node's live count: %s", error)

    async def read(self) -> list[NodeConnections]:
        """Every node that reported recently; stale entries are removed."""
        raw = await self._redis.hgetall(self._key)
        now_ms = time.time() * 1000
        found, stale = [], []
        for field, value in raw.items():
            node_id = _text(field)
            count_text, _, at_text = _text(value).partition("|")
            if not (count_text.isdigit() and at_text.isdigit()):
                stale.append(node_id)
                continue
            at_ms = int(at_text)
            if now_ms - at_ms > STALE_SECONDS * 1000:
                stale.append(node_id)
                continue
            at = datetime.fromtimestamp(at_ms / 1000, UTC)
            found.append(NodeConnections(node_id, int(count_text), at))
        if stale:
            await self._redis.hdel(self._key, *stale)
        return found


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
