"""The write path's decisions (app/core/scoring.py) against in-memory twins of its ports."""

from __future__ import annotations

import asyncio

import pytest

from app.core.catalog import Action, Catalog
from app.core.errors import AccountGone, AlreadyCompleted, RateLimited, UnknownAction
from app.core.scoring import Completion, complete_action
from app.core.tokens import Identity
from tests.support.twins import (
    MemoryCompletions,
    MemoryDatabase,
    MemoryIssuers,
    MemoryRanking,
    MemoryRateGate,
)

ACTIONS = [Action("quiz", "Quiz", 10), Action("boss", "Boss", 50)]


class World:
    def __init__(self) -> None:
        self.db = MemoryDatabase(active_actions={a.id: a.points for a in ACTIONS})
        self.store = MemoryCompletions(self.db)
        self.ranking = MemoryRanking()
        self.gate = MemoryRateGate()
        self.catalog = Catalog(ACTIONS)
        self.issuers = MemoryIssuers()

    async def complete(self, who: Identity, action_id: str, limit: int = 10) -> Completion:
        return await complete_action(
            identity=who,
            action_id=action_id,
            data=None,
            store=self.store,
            catalog=self.catalog,
            gate=self.gate,
            ranking=self.ranking,
            issuers=self.issuers,
            limit_per_minute=limit,
        )


@pytest.fixture
def world() -> World:
    return World()


async def test_a_completion_earns_the_catalog_points_and_a_rank(world: World) -> None:
    alice = world.db.add_user("alice")
    done = await world.complete(alice, "boss")
    assert done == Completion(
        points_earned=50, new_score=50, rank=1, previous_rank=None, top10_changed=True
    )


async def test_a_repeat_is_refused_with_the_original_receipt(world: World) -> None:
    alice = world.db.add_user("alice")
    await world.complete(alice, "quiz")
    with pytest.raises(AlreadyCompleted) as refused:
        await world.complete(alice, "quiz")
    assert refused.value.details["pointsEarned"] == 10
    assert refused.value.details["actionId"] == "quiz"
    assert world.db.users[alice.user_id].score == 10


async def test_an_unknown_action_is_refused_before_anything_is_written(world: World) -> None:
    alice = world.db.add_user("alice")
    with pytest.raises(UnknownAction):
        await world.complete(alice, "no_such_action")
    assert not world.db.history


async def test_an_action_deactivated_after_the_catalog_was_read_is_unknown(world: World) -> None:
    alice = world.db.add_user("alice")
    del world.db.active_actions["quiz"]  # the node's copy still lists it
    with pytest.raises(UnknownAction):
        await world.complete(alice, "quiz")


async def test_a_deleted_account_cannot_score(world: World) -> None:
    ghost = Identity("00000000-0000-0000-0000-000000000000", "ghost")
    with pytest.raises(AccountGone):
        await world.complete(ghost, "quiz")


async def test_the_gate_counts_every_attempt_and_refuses_the_eleventh(world: World) -> None:
    alice = world.db.add_user("alice")
    await world.complete(alice, "quiz")
    for _ in range(9):
        with pytest.raises(AlreadyCompleted):
            await world.complete(alice, "quiz")
    with pytest.raises(RateLimited) as limited:
        await world.complete(alice, "boss")
    assert limited.value.retry_after_seconds >= 1
    assert world.db.users[alice.user_id].score == 10


async def test_when_the_cache_is_away_the_commit_stands_and_ranks_come_from_the_store(
    world: World,
) -> None:
    alice, bob = world.db.add_user("alice"), world.db.add_user("bob")
    await world.complete(bob, "boss")
    world.ranking.available = False
    done = await world.complete(alice, "quiz")
    assert (done.new_score, done.rank, done.previous_rank, done.top10_changed) == (
        10,
        2,
        None,
        False,
    )
    second = await world.complete(alice, "boss")
    assert (second.new_score, second.rank, second.previous_rank) == (60, 1, 2)


async def test_concurrent_duplicates_award_once(world: World) -> None:
    alice = world.db.add_user("alice")
    results = await asyncio.gather(
        *(world.complete(alice, "boss", limit=100) for _ in range(20)), return_exceptions=True
    )
    assert sum(isinstance(r, Completion) for r in results) == 1
    assert all(isinstance(r, (Completion, AlreadyCompleted)) for r in results)
    assert world.db.users[alice.user_id].score == 50
