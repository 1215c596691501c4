"""Tells every node that a user's sessions ended (the RevocationBus port on Redis pub/sub).

Each node's one subscription (app/redis/broker.py) hands the message to its session guard.
A message lost while Redis is away is no hole: every node also polls the moments from
PostgreSQL (app/core/sessions.py).
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.sessions import Revocation
from app.redis.keys import Keys

log = logging.getLogger(__name__)


class RedisRevocationBus:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._channel = keys.sessions_channel

    @property
    def channel(self) -> str:
        return self._channel

    async def publish(self, revocation: Revocation) -> None:
        try:
            await self._redis.publish(self._channel, revocation.encode())
        except (RedisError, OSError) as error:
            log.warning("could not announce ended sessions (%r); the nodes' poll will", error)
