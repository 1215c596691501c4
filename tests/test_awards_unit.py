"""Server awards' decisions (app/core/awards.py) against in-memory twins of their ports."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.core import awards as awards_module
from app.core.awards import (
    ApiKey,
    AwardOutcome,
    AwardRequest,
    Fresh,
    NotApplied,
    Repeat,
    StoredAward,
    api_key_secret,
    authenticate_key,
    award_action,
    key_digest,
    new_key_secret,
)
from app.core.board_reads import UserNotFound
from app.core.errors import (
    AccountGone,
    AlreadyCompleted,
    IdempotencyKeyReused,
    MissingScope,
    RateLimited,
    Unauthorized,
    UnknownAction,
)
from tests.support.twins import MemoryCompletions, MemoryDatabase, MemoryRanking, MemoryRateGate

KEY = ApiKey("k1", "arena", ("award",))


class MemoryAwards:
    """The AwardStore port: the claim and the commit under one lock (one transaction)."""

    def __init__(self, completions: MemoryCompletions) -> None:
        self.completions = completions
        self.rows: dict[tuple[str, str], StoredAward] = {}
        self.settles = 0
        self._lock = asyncio.Lock()

    async def award(self, api_key_id: str, request: AwardRequest, digest: bytes) -> AwardOutcome:
        async with self._lock:
            found = self.rows.get((api_key_id, request.idempotency_key))
            if found is not None:
                return Repeat(found)
            try:
                committed = await self.completions.commit(request.user_id, request.action_id)
            except AccountGone:
                raise UserNotFound(request.user_id) from None
            if committed is None:
                return NotApplied()
            self.rows[(api_key_id, request.idempotency_key)] = StoredAward(
                digest, committed.points, committed.score, None
            )
            return Fresh(committed)

    async def stored(self, api_key_id: str, idempotency_key: str) -> StoredAward | None:
        return self.rows.get((api_key_id, idempotency_key))

    async def settle(
        self, api_key_id: str, idempotency_key: str, response: dict[str, Any]
    ) -> dict[str, Any]:
        self.settles += 1
        row = self.rows[(api_key_id, idempotency_key)]
        if row.response is None:
            row = self.rows[(api_key_id, idempotency_key)] = StoredAward(
                row.request_hash, row.points, row.new_score, response
            )
        assert row.response is not None
        return row.response


class World:
    def __init__(self) -> None:
        self.db = MemoryDatabase(active_actions={"boss": 100, "quiz": 10, "level": 50})
        self.completions = MemoryCompletions(self.db)
        self.awards = MemoryAwards(self.completions)
        self.gate = MemoryRateGate()
        self.ranking = MemoryRanking()
        self.ada = self.db.add_user("ada").user_id

    async def award(
        self,
        action: str = "boss",
        idem: str = "i1",
        key: ApiKey = KEY,
        limit: int = 1000,
        **kw: Any,
    ) -> dict[str, Any]:
        return await award_action(
            key=key,
            request=AwardRequest(kw.get("user", self.ada), action, idem, kw.get("data")),
            awards=self.awards,
            completions=self.completions,
            gate=self.gate,
            ranking=self.ranking,
            limit_per_minute=limit,
        )


@pytest.fixture
def world() -> World:
    return World()


async def test_an_award_answers_like_a_completion_and_a_repeat_alike(world: World) -> None:
    first = await world.award()
    assert first == {
        "success": True,
        "pointsEarned": 100,
        "newScore": 100,
        "rank": 1,
        "previousRank": None,
        "top10Changed": True,
    }
    assert await world.award() == first
    assert world.db.users[world.ada].score == 100


async def test_concurrent_repeats_award_once(world: World) -> None:
    answers = await asyncio.gather(*(world.award() for _ in range(50)))
    assert all(a == answers[0] for a in answers)
    assert world.db.users[world.ada].score == 100


async def test_another_request_under_a_used_key_is_refused(world: World) -> None:
    await world.award()
    with pytest.raises(IdempotencyKeyReused):
        await world.award(action="quiz")
    with pytest.raises(IdempotencyKeyReused):
        await world.award(data={"a": 1})
    # Keys belong to one API key: another API key may use the same one.
    other = ApiKey("k2", "other", ("award",))
    assert (await world.award(action="quiz", key=other))["pointsEarned"] == 10


async def test_a_repeat_builds_the_answer_when_the_first_never_stored_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(awards_module, "_SETTLE_WAIT_SECONDS", 0.05)
    request = AwardRequest(world.ada, "boss", "lost", None)
    outcome = await world.awards.award("k1", request, request.digest())
    assert isinstance(outcome, Fresh)  # ... and the first request dies here
    answer = await world.award(idem="lost")
    assert (answer["pointsEarned"], answer["newScore"], answer["rank"]) == (100, 100, 1)
    assert world.db.users[world.ada].score == 100


async def test_refusals(world: World) -> None:
    with pytest.raises(MissingScope):
        await world.award(key=ApiKey("k3", "reader", ("read",)))
    with pytest.raises(UnknownAction):
        await world.award(action="nope")
    with pytest.raises(UserNotFound):
        await world.award(user="00000000-0000-4000-8000-000000000000")
    await world.award(idem="a")
    with pytest.raises(AlreadyCompleted):
        await world.award(idem="b")
    assert set(world.awards.rows) == {("k1", "a")}  # refusals store nothing


async def test_each_key_is_limited(world: World) -> None:
    for action in ("quiz", "boss", "level"):
        await world.award(action=action, idem=action, limit=3)
    with pytest.raises(RateLimited):
        await world.award(idem="x", limit=3)


async def test_the_api_key_header() -> None:
    secret = new_key_secret()
    assert secret.startswith("lbk_") and len(secret) == 47
    assert api_key_secret(f"ApiKey {secret}") == secret
    assert api_key_secret(f"apikey  {secret} ") == secret
    for header in (None, "", "ApiKey", f"Bearer {secret}", "ApiKey " + "x" * 101):
        with pytest.raises(Unauthorized):
            api_key_secret(header)

    class Keys:
        async def find(self, digest: bytes) -> ApiKey | None:
            return KEY if digest == key_digest(secret) else None

    assert await authenticate_key(Keys(), f"ApiKey {secret}") == KEY
    with pytest.raises(Unauthorized) as refused:
        await authenticate_key(Keys(), f"ApiKey {secret}x")
    assert secret not in refused.value.message
