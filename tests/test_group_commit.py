"""Group commit (app/db/group_commit.py) against real PostgreSQL: completions that arrive
together commit in one statement and each answers exactly as it would alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from app.core.errors import CommitOutcomeUnknown, VerificationFailed
from app.core.settings import Settings
from app.db.accounts import ensure_user
from app.db.completions import PgCompletions
from app.db.group_commit import GroupCommitStore
from app.db.pool import DbTimeouts, create_pool


@pytest.fixture
async def stores(
    settings: Settings, catalog_loaded: Any
) -> AsyncIterator[tuple[PgCompletions, GroupCommitStore]]:
    pool = await create_pool(settings.database_url, settings)
    timeouts = DbTimeouts.from_settings(settings)
    single = PgCompletions(pool, timeouts)
    try:
        yield single, GroupCommitStore(single, pool, timeouts, max_in_flight=1)
    finally:
        await pool.close()


async def users(db: asyncpg.Connection, prefix: str, count: int) -> list[str]:
    return [(await ensure_user(db, f"{prefix}{i}")).user_id for i in range(count)]


async def test_a_burst_commits_in_groups_and_each_gets_its_own_result(
    stores: tuple[PgCompletions, GroupCommitStore], db: asyncpg.Connection
) -> None:
    single, grouped = stores
    ids = await users(db, "burst", 40)
    results = await asyncio.gather(*(grouped.commit(u, "quiz_a") for u in ids))
    assert grouped.groups >= 1
    assert [r.user_id for r in results if r is not None] == ids
    assert {(r.points, r.score) for r in results if r is not None} == {(10, 10)}
    assert (
        await db.fetchval("SELECT count(*) FROM score_history WHERE user_id = ANY($1)", ids) == 40
    )
    # The same as one statement each would give: another user, alone, the same commit.
    (alone,) = await users(db, "alone", 1)
    reference = await single.commit(alone, "quiz_a")
    assert reference is not None and results[0] is not None
    assert [(b.board_id, b.period, b.score) for b in results[0].boards] == [
        (b.board_id, b.period, b.score) for b in reference.boards
    ]
    assert results[0].username == "burst0"


async def test_repeats_and_one_users_several_completions_add_up_exactly(
    stores: tuple[PgCompletions, GroupCommitStore], db: asyncpg.Connection
) -> None:
    _, grouped = stores
    (alice,) = await users(db, "alice", 1)
    others = await users(db, "other", 10)
    calls = [grouped.commit(alice, "quiz_a") for _ in range(5)]
    calls += [grouped.commit(alice, action) for action in ("quiz_b", "quiz_c", "retired")]
    calls += [grouped.commit(u, "level_a") for u in others]
    results = await asyncio.gather(*calls)
    quiz_a = results[:5]
    assert sum(r is not None for r in quiz_a) == 1  # exactly once
    assert results[7] is None  # retired: nothing applied (the core says INVALID_ACTION)
    scores = sorted(r.score for r in results[:7] if r is not None)
    assert scores == [10, 20, 30]  # alice's three awards, one after another
    assert await db.fetchval("SELECT score FROM users WHERE id = $1", alice) == 30
    assert all(r is not None and r.score == 50 for r in results[8:])


async def test_a_refused_group_answers_each_as_alone(
    stores: tuple[PgCompletions, GroupCommitStore], db: asyncpg.Connection
) -> None:
    _, grouped = stores
    ids = await users(db, "ref", 6)
    gone = ids[2]
    await db.execute("DELETE FROM users WHERE id = $1", gone)
    # Keep a statement in flight so the next ones queue up into one group.
    blocker = (await users(db, "blocker", 1))[0]
    first = asyncio.ensure_future(grouped.commit(blocker, "quiz_a"))
    await asyncio.sleep(0)
    calls = [grouped.commit(u, "quiz_b") for u in ids]
    calls.append(grouped.commit(ids[0], "quiz_c", "jti-1"))
    calls.append(grouped.commit(ids[1], "quiz_c", "jti-1"))
    results = await asyncio.gather(*calls, return_exceptions=True)
    await first
    # A user gone: nothing applied (the core then finds no prior and an active action:
    # AccountGone, as after a single statement's foreign-key refusal).
    assert results[2] is None
    assert all(
        not isinstance(r, Exception) and r is not None for i, r in enumerate(results[:6]) if i != 2
    )
    receipts = results[6:]
    assert sum(isinstance(r, VerificationFailed) for r in receipts) == 1
    assert sum(r is not None and not isinstance(r, Exception) for r in receipts) == 1
    assert grouped.groups >= 1
    assert await db.fetchval("SELECT count(*) FROM score_history WHERE receipt_jti = 'jti-1'") == 1


async def test_a_group_never_answered_is_outcome_unknown_for_each(
    stores: tuple[PgCompletions, GroupCommitStore],
    db: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, grouped = stores
    ids = await users(db, "lost", 4)

    async def no_answer(*_: object, **__: object) -> None:
        raise TimeoutError

    monkeypatch.setattr(asyncpg.connection.Connection, "fetch", no_answer)
    results = await asyncio.gather(
        *(grouped.commit(u, "quiz_b") for u in ids), return_exceptions=True
    )
    assert all(isinstance(r, CommitOutcomeUnknown) for r in results), results
    assert len({id(r) for r in results}) == 4  # each its own error
    assert grouped.groups >= 1


async def test_two_nodes_grouping_the_same_users_never_deadlock(
    settings: Settings, catalog_loaded: Any, db: asyncpg.Connection
) -> None:
    # As the limits benchmark does: each user sends a burst of different actions, spread over
    # two processes, each grouping its share with other users' in its own order.
    timeouts = DbTimeouts.from_settings(settings)
    pools = [await create_pool(settings.database_url, settings) for _ in range(2)]
    try:
        nodes = [GroupCommitStore(PgCompletions(p, timeouts), p, timeouts) for p in pools]
        ids = await users(db, "burst", 30)
        actions = ["quiz_a", "quiz_b", "quiz_c", "level_a", "level_b", "boss"]
        calls = [
            nodes[(i + j) % 2].commit(user, action)
            for j, action in enumerate(actions)
            for i, user in enumerate(reversed(ids) if j % 2 else ids)
        ]
        async with asyncio.timeout(20):
            results = await asyncio.gather(*calls, return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert all(r is not None for r in results)
        assert sum(n.groups for n in nodes) >= 2
        assert sum(n.refused for n in nodes) == 0  # no deadlock (each costs a second)
        scores = await db.fetch("SELECT score FROM users WHERE id = ANY($1::uuid[])", ids)
        assert {row["score"] for row in scores} == {10 + 10 + 10 + 50 + 50 + 100}
    finally:
        for pool in pools:
            await pool.close()


async def test_a_proof_checked_against_another_verification_applies_nothing(
    stores: tuple[PgCompletions, GroupCommitStore], db: asyncpg.Connection
) -> None:
    # The node's catalog copy said "receipt"; the table says quiz_a is a claim: as COMMIT_SQL.
    _, grouped = stores
    ids = await users(db, "kind", 3)
    results = await asyncio.gather(
        grouped.commit(ids[0], "quiz_a", verified_as="receipt"),
        grouped.commit(ids[1], "quiz_a", verified_as="claim"),
        grouped.commit(ids[2], "quiz_a"),
    )
    assert results[0] is None
    assert results[1] is not None and results[2] is not None


async def test_the_database_rank_fallback_leaves_banned_players_out(
    stores: tuple[PgCompletions, GroupCommitStore], db: asyncpg.Connection
) -> None:
    """While Redis is away a completion's rank comes from PostgreSQL (RANKS_SQL): a banned
    player is on no board, so it does not count above anyone there either."""
    single, _ = stores
    cheat, honest, player = await users(db, "rankfallback", 3)
    await db.execute("UPDATE users SET score = 500 WHERE id = ANY($1::uuid[])", [cheat, honest])
    await db.execute("UPDATE users SET score = 50 WHERE id = $1", player)
    assert (await single.ranks(player, 50, 0)).rank == 3
    await db.execute("UPDATE users SET banned_at = now() WHERE id = $1", cheat)
    ranks = await single.ranks(player, 50, 40)
    assert (ranks.rank, ranks.previous_rank) == (2, 2)
