"""The one facade over lua/: every script registered once, each behind one typed method.

No other module sees KEYS or ARGV, and every key comes from ``Keys``. ``load()`` runs an eager
``SCRIPT LOAD`` of every script at start-up, so a broken one fails start-up rather than a
request. redis-py's ``AsyncScript`` calls EVALSHA and, on NOSCRIPT (after ``SCRIPT FLUSH`` or
against a restarted server), loads the script again and retries.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import orjson
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from app.core.resources import resource_dir
from app.redis.keys import Keys

TOP_N = 10
_USES = re.compile(r"^-- uses: (\w+)$", re.MULTILINE)


def read_script(name: str) -> str:
    """The script's source with the libraries it names (``-- uses: x``, and theirs) in front,
    each once, a library before whatever uses it."""
    folder = resource_dir("lua")
    ordered: list[str] = []

    def visit(lib: str, chain: tuple[str, ...]) -> None:
        if lib in chain:
            raise ValueError(f"lua/{lib}.lua uses itself: {' -> '.join((*chain, lib))}")
        for used in _USES.findall((folder / f"{lib}.lua").read_text()):
            visit(used, (*chain, lib))
        if lib not in ordered:
            ordered.append(lib)

    visit(name, ())
    return "\n".join((folder / f"{part}.lua").read_text() for part in ordered)


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
    # The ranking had no version counter: only a full reconcile may publish from it again.
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
    top_changed: bool
    version: int
    cold: bool = False


# "check" only counts drift; "fix" repairs the live keys; "stage" copies into a rebuild's keys.
BatchMode = Literal["check", "fix", "stage"]


@dataclass(frozen=True)
class BatchDrift:
    """What one batch of the reconciler found (see lua/reconcile_batch.lua)."""

    missing: int
    wrong: int
    extra: int
    accounted: int
    newer: int


@dataclass(frozen=True)
class SwapResult:
    replaced: int  # users the live ranking held just before the staged one took its place
    version: int  # of the top 10 published under the new epoch


class Scripts:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._registered: dict[str, AsyncScript] = {}
        self._apply_score = self._register("apply_score")
        self._publish_top10 = self._register("publish_top10")
        self._rate_limit = self._register("rate_limit")
        self._reconcile_batch = self._register("reconcile_batch")
        self._reconcile_swap = self._register("reconcile_swap")
        self._lock_extend = self._register("lock_extend")
        self._lock_release = self._register("lock_release")
        self._live_register = self._register("live_register")

    def _register(self, name: str) -> AsyncScript:
        script = self._redis.register_script(read_script(name))
        self._registered[name] = script
        return script

    def registered(self) -> dict[str, str]:
        """Each script's name and SHA1 (the contract tests check every one in lua/ is here)."""
        return {name: script.sha for name, script in self._registered.items()}

    async def load(self) -> None:
        """``SCRIPT LOAD`` every script now, so a broken one fails start-up, not a request."""
        for script in self._registered.values():
            script.sha = await self._redis.script_load(script.script)

    # -- leaderboard ----------------------------------------------------------------------------

    async def apply_score(self, standing: Standing, updated_at: str) -> ApplyResult:
        """Write a committed standing into the ranking; publish the top 10 if it changed."""
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

    async def publish_top10(self, updated_at: str, new_epoch: bool = False) -> PublishResult:
        """Publish the top 10 the ranking holds if it changed (or under a new epoch)."""
        changed, version = await self._publish_top10(
            keys=self._keys.leaderboard_keys(),
            args=[updated_at, self._keys.updates_channel, TOP_N, "1" if new_epoch else "0"],
        )
        return PublishResult(int(changed) == 1, int(version), cold=int(changed) == -1)

    # -- rate limits ----------------------------------------------------------------------------

    async def rate_limit(
        self, key: str, limit: int, window_ms: int, request_id: str
    ) -> RateDecision:
        allowed, remaining, retry_ms = await self._rate_limit(
            keys=[key], args=[limit, window_ms, request_id]
        )
        return RateDecision(bool(allowed), int(remaining), int(retry_ms))

    # -- reconciler -----------------------------------------------------------------------------

    async def reconcile_batch(
        self, mode: BatchMode, standings: Sequence[Standing], stage_ttl_seconds: int
    ) -> BatchDrift:
        """Compare standings read from PostgreSQL (score 0: must be unranked) with the live
        ranking; by ``mode`` count, repair, or stage them for a full rebuild."""
        batch = orjson.dumps([[s.user_id, s.username, s.score, s.member] for s in standings])
        keys = self._keys
        missing, wrong, extra, accounted, newer = await self._reconcile_batch(
            keys=[keys.ranking, keys.members, keys.names, *keys.rebuild_keys()],
            args=[mode, stage_ttl_seconds, batch],
        )
        return BatchDrift(int(missing), int(wrong), int(extra), int(accounted), int(newer))

    async def reconcile_swap(self, lock_token: str, updated_at: str) -> SwapResult | None:
        """Put the staged ranking in place of the live one and publish it under a new epoch,
        if ``lock_token`` still holds the reconcile lock; None (nothing touched) if not."""
        keys = self._keys
        replaced, version = await self._reconcile_swap(
            keys=[*keys.leaderboard_keys(), *keys.rebuild_keys(), keys.reconcile_lock],
            args=[lock_token, updated_at, keys.updates_channel, TOP_N],
        )
        if int(replaced) < 0:
            return None
        return SwapResult(int(replaced), int(version))

    # -- locks ----------------------------------------------------------------------------------

    async def lock_extend(self, key: str, token: str, ttl_ms: int) -> bool:
        """Renew the lock's expiry if ``token`` still holds it."""
        return bool(await self._lock_extend(keys=[key], args=[token, ttl_ms]))

    async def lock_release(self, key: str, token: str) -> bool:
        """Delete the lock if ``token`` still holds it (never a successor's)."""
        return bool(await self._lock_release(keys=[key], args=[token]))

    # -- live connections -----------------------------------------------------------------------

    async def live_register(
        self, user_id: str, member: str, max_per_user: int, ttl_seconds: int
    ) -> list[str]:
        """Record a live connection of the user; the members it evicted (oldest first), each
        also published on its node's control channel."""
        evicted = await self._live_register(
            keys=[self._keys.live_connections(user_id)],
            args=[member, max_per_user, ttl_seconds, self._keys.live_control_prefix],
        )
        return [raw.decode() if isinstance(raw, bytes) else str(raw) for raw in evicted]
