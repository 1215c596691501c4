"""The Redis Lua scripts, loaded once and each hidden behind one typed method.

Callers never see KEYS or ARGV. redis-py's ``Script`` runs EVALSHA and reloads the script by
itself after a ``SCRIPT FLUSH`` or a restarted server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from app.core.resources import resource_dir
from app.redis.keys import Keys

TOP_N = 10
_USES = re.compile(r"^-- uses: (\w+)$", re.MULTILINE)


def read_script(name: str) -> str:
    """The script's source, with the shared libraries it names (``-- uses: x``) in front."""
    folder = resource_dir("lua")
    source = (folder / f"{name}.lua").read_text()
    libraries = [(folder / f"{lib}.lua").read_text() for lib in _USES.findall(source)]
    return "\n".join([*libraries, source])


def script_names() -> list[str]:
    """Every script in lua/, without the shared libraries (``lib_*``) they include."""
    folder = resource_dir("lua")
    return sorted(p.stem for p in folder.glob("*.lua") if not p.stem.startswith("lib_"))


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    remaining: int
    retry_after_ms: int


@dataclass(frozen=True)
class ApplyResult:
    applied: bool
    rank: int
    previous_rank: int | None
    top_changed: bool
    version: int
    # The ranking had no version counter: it must be seeded from PostgreSQL (nothing published).
    cold: bool = False
    # The message published by this call (empty when the top 10 did not change).
    message: bytes = b""


@dataclass(frozen=True)
class Standing:
    """A user's committed standing, as the ranking stores it."""

    user_id: str
    username: str
    score: int
    member: str


@dataclass(frozen=True)
class PublishResult:
    upserted: int
    top_changed: bool
    version: int
    cold: bool = False


class Scripts:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._rate_limit = self._register("rate_limit")
        self._apply_score = self._register("apply_score")
        self._publish_top10 = self._register("publish_top10")

    def _register(self, name: str) -> AsyncScript:
        return self._redis.register_script(read_script(name))

    async def load(self) -> None:
        """Load every script in lua/ now (also those other modules call: the reconciler, the
        live registry), so a broken one fails start-up instead of a request."""
        for name in script_names():
            await self._redis.script_load(read_script(name))

    async def rate_limit(
        self, key: str, limit: int, window_ms: int, request_id: str
    ) -> RateDecision:
        allowed, remaining, retry_ms = await self._rate_limit(
            keys=[key], args=[limit, window_ms, request_id]
        )
        return RateDecision(bool(allowed), int(remaining), int(retry_ms))

    async def apply_score(self, standing: Standing, updated_at: str) -> ApplyResult:
        applied, rank, previous_rank, changed, version, message = await self._apply_score(
            keys=self._keys.leaderboard_keys(),
            args=[
                standing.user_id,
                standing.username,
                standing.score,
                standing.member,
                updated_at,
                self._keys.updates_channel,
                TOP_N,
            ],
        )
        return ApplyResult(
            applied=bool(applied),
            rank=int(rank),
            previous_rank=int(previous_rank) or None,
            top_changed=int(changed) == 1,
            version=int(version),
            cold=int(changed) == -1,
            message=message,
        )

    async def publish_top10(
        self, standings: list[Standing], updated_at: str, new_epoch: bool = False
    ) -> PublishResult:
        args: list[str | int] = [
            updated_at,
            self._keys.updates_channel,
            TOP_N,
            "1" if new_epoch else "0",
        ]
        for s in standings:
            args += [s.user_id, s.username, s.score, s.member]
        upserted, changed, version = await self._publish_top10(
            keys=self._keys.leaderboard_keys(), args=args
        )
        return PublishResult(
            int(upserted), int(changed) == 1, int(version), cold=int(changed) == -1
        )
