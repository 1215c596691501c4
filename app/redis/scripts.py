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
from typing import Any, Literal, NamedTuple

import orjson
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from app.core.resources import resource_dir
from app.redis.keys import BoardKeys, Keys

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


class BoardRow(NamedTuple):
    """One row of a board's ranking as Redis holds it, with its shared rank."""

    user_id: str
    reached_us: int  # when the user reached the score, µs since the epoch (from the member)
    score: int
    rank: int
    username: str


@dataclass(frozen=True)
class BoardRead:
    """What board_read.lua answered: rows (empty and ``ranked`` False: the user has no
    points), the ranked total, and whether the ranking was cold (nothing read)."""

    rows: list[BoardRow]
    total: int
    ranked: bool = True
    cold: bool = False


def _read_keys(board: BoardKeys) -> list[str]:
    return [board.ranking, board.members, board.names, board.version]


def _board_read(reply: list[Any]) -> BoardRead:
    status, total = int(reply[0]), int(reply[1])
    if status < 0:
        return BoardRead([], 0, cold=True)
    flat = reply[2:]
    rows = [
        BoardRow(u.decode(), reached, score, rank, name.decode())
        for u, reached, score, rank, name in zip(
            flat[0::5], flat[1::5], flat[2::5], flat[3::5], flat[4::5], strict=True
        )
    ]
    return BoardRead(rows, total, ranked=status == 1)


@dataclass(frozen=True)
class Standing:
    """A user's committed standing, as the ranking stores it."""

    user_id: str
    username: str
    score: int
    member: str


@dataclass(frozen=True)
class BoardApply:
    """One board's part of a commit's apply: its keys, the standing, when its keys expire."""

    board: BoardKeys
    standing: Standing
    expire_at_ms: int = 0


def _apply_result(reply: list[object]) -> ApplyResult:
    applied, rank, previous_rank, changed, version, message = reply
    return ApplyResult(
        applied=bool(applied),
        rank=int(rank),  # type: ignore[call-overload]
        previous_rank=int(previous_rank) or None,  # type: ignore[call-overload]
        top_changed=int(changed) == 1,  # type: ignore[call-overload]
        version=int(version),  # type: ignore[call-overload]
        cold=int(changed) == -1,  # type: ignore[call-overload]
        message=message if isinstance(message, bytes) else str(message).encode(),
    )


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
class RemoveResult:
    removed: bool  # the user was in the ranking
    top_changed: bool
    version: int
    message: bytes = b""  # the published message when the top 10 changed


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
        self._board_read = self._register("board_read")
        self._remove_user = self._register("remove_user")

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

    async def apply_score(
        self,
        standing: Standing,
        updated_at: str,
        board: BoardKeys | None = None,
        expire_at_ms: int = 0,
    ) -> ApplyResult:
        """Write a committed standing into a board's ranking (all time by default); publish
        its top 10 if it changed. A period's keys expire at ``expire_at_ms`` (0: never)."""
        keys, args = self._apply_call(
            standing, updated_at, board or self._keys.all_time, expire_at_ms
        )
        return _apply_result(await self._apply_score(keys=keys, args=args))

    async def apply_scores(
        self, applies: Sequence[BoardApply], updated_at: str
    ) -> list[ApplyResult]:
        """Every board's apply of one commit in ONE round trip: a pipeline of EVALSHAs (each
        board's keys have their own hash tag, so they are separate scripts, each atomic).
        Not redis-py's pipelined ``Script``, which asks SCRIPT EXISTS first: a second round
        trip on every call. After a SCRIPT FLUSH the script is loaded and the pipeline run
        again, which is harmless: every apply is idempotent."""
        (results,) = await self.apply_scores_of_many([(applies, updated_at)])
        if isinstance(results, Exception):
            raise results
        return results

    async def apply_scores_of_many(
        self, commits: Sequence[tuple[Sequence[BoardApply], str]]
    ) -> list[list[ApplyResult] | Exception]:
        """``apply_scores`` of several commits in ONE round trip (group apply); for each
        commit its results, or the error one of its replies was."""
        script = self._apply_score
        for attempt in (1, 2):
            async with self._redis.pipeline(transaction=False) as pipe:
                for applies, updated_at in commits:
                    for item in applies:
                        keys, args = self._apply_call(
                            item.standing, updated_at, item.board, item.expire_at_ms
                        )
                        pipe.evalsha(script.sha, len(keys), *keys, *args)
                replies = await pipe.execute(raise_on_error=False)
            missing = [r for r in replies if isinstance(r, NoScriptError)]
            if not missing or attempt == 2:
                break
            script.sha = await self._redis.script_load(script.script)
        out: list[list[ApplyResult] | Exception] = []
        start = 0
        for applies, _ in commits:
            mine = replies[start : start + len(applies)]
            start += len(applies)
            error = next((r for r in mine if isinstance(r, Exception)), None)
            out.append(error if error is not None else [_apply_result(r) for r in mine])
        return out

    def _apply_call(
        self, standing: Standing, updated_at: str, board: BoardKeys, expire_at_ms: int
    ) -> tuple[list[str], list[str | int]]:
        return board.leaderboard_keys(), [
            standing.user_id,
            standing.username,
            standing.score,
            standing.member,
            updated_at,
            self._keys.updates_channel,
            TOP_N,
            board.board,
            board.period,
            expire_at_ms,
        ]

    async def publish_top10(
        self,
        updated_at: str,
        new_epoch: bool = False,
        board: BoardKeys | None = None,
        expire_at_ms: int = 0,
    ) -> PublishResult:
        """Publish the top 10 a board's ranking holds if it changed (or under a new epoch)."""
        target = board or self._keys.all_time
        changed, version = await self._publish_top10(
            keys=target.leaderboard_keys(),
            args=[
                updated_at,
                self._keys.updates_channel,
                TOP_N,
                "1" if new_epoch else "0",
                target.board,
                target.period,
                expire_at_ms,
            ],
        )
        return PublishResult(int(changed) == 1, int(version), cold=int(changed) == -1)

    async def remove_user(self, user_id: str, updated_at: str, board: BoardKeys) -> RemoveResult:
        """Take the user out of a board's ranking (a ban); publish its top 10 if it changed."""
        removed, changed, version, message = await self._remove_user(
            keys=board.leaderboard_keys(),
            args=[
                user_id,
                updated_at,
                self._keys.updates_channel,
                TOP_N,
                board.board,
                board.period,
            ],
        )
        return RemoveResult(
            removed=int(removed) == 1,
            top_changed=int(changed) == 1,
            version=int(version),
            message=message if isinstance(message, bytes) else str(message).encode(),
        )

    async def board_page(
        self, board: BoardKeys, limit: int, after: tuple[int, str] | None
    ) -> BoardRead:
        """Up to ``limit`` rows after (score, member), from the top when None."""
        score, member = after if after is not None else ("", "")
        return _board_read(
            await self._board_read(keys=_read_keys(board), args=["page", limit, score, member])
        )

    async def board_around(self, board: BoardKeys, user_id: str, radius: int) -> BoardRead:
        """The user's row with up to ``radius`` rows on each side."""
        return _board_read(
            await self._board_read(keys=_read_keys(board), args=["around", radius, user_id])
        )

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
        self,
        mode: BatchMode,
        standings: Sequence[Standing],
        stage_ttl_seconds: int,
        board: BoardKeys | None = None,
    ) -> BatchDrift:
        """Compare standings read from PostgreSQL (score 0: must be unranked) with the live
        ranking; by ``mode`` count, repair, or stage them for a full rebuild."""
        batch = orjson.dumps([[s.user_id, s.username, s.score, s.member] for s in standings])
        keys = board or self._keys.all_time
        missing, wrong, extra, accounted, newer = await self._reconcile_batch(
            keys=[keys.ranking, keys.members, keys.names, *keys.rebuild_keys()],
            args=[mode, stage_ttl_seconds, batch],
        )
        return BatchDrift(int(missing), int(wrong), int(extra), int(accounted), int(newer))

    async def reconcile_swap(
        self,
        lock_token: str,
        updated_at: str,
        board: BoardKeys | None = None,
        expire_at_ms: int = 0,
    ) -> SwapResult | None:
        """Put the staged ranking in place of the live one and publish it under a new epoch,
        if ``lock_token`` still holds the reconcile lock; None (nothing touched) if not."""
        keys = board or self._keys.all_time
        # The all-time board checks the reconcile lock itself; another board a copy of its
        # token under that board's tag (one slot per script).
        lock = self._keys.reconcile_lock if board is None else keys.rebuild_lock
        replaced, version = await self._reconcile_swap(
            keys=[*keys.leaderboard_keys(), *keys.rebuild_keys(), lock],
            args=[
                lock_token,
                updated_at,
                self._keys.updates_channel,
                TOP_N,
                keys.board,
                keys.period,
                expire_at_ms,
            ],
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
