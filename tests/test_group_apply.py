"""Group apply (app/redis/group_apply.py): completions committed together apply to Redis in
one round trip, each with its own result."""

from __future__ import annotations

import asyncio
from typing import Any

from app.core.tokens import Identity
from app.http import complete_flow
from app.redis.group_apply import GroupApply
from tests.conftest import services_of


async def test_completions_together_apply_in_one_round_trip(app: Any, make_player: Any) -> None:
    svc = services_of(app)
    assert isinstance(svc.score_applies, GroupApply)
    players = [await make_player() for _ in range(12)]
    actions = ["quiz_a"] * 6 + ["level_a"] * 6
    completions = await asyncio.gather(
        *(
            complete_flow.complete(svc, p.identity, action, None)
            for p, action in zip(players, actions, strict=True)
        )
    )
    assert svc.score_applies.groups >= 1
    assert [c.new_score for c in completions] == [10] * 6 + [50] * 6
    # Shared ranks, each as the ranking holds it after its own apply.
    assert {c.rank for c in completions[6:]} == {1}
    assert all(c.rank is not None and 1 <= c.rank <= 12 for c in completions[:6])
    ranked = await svc.redis.zcard(svc.keys.all_time.ranking)
    assert ranked == 12


async def test_redis_away_answers_each_from_the_database(
    app: Any, make_player: Any, monkeypatch: Any
) -> None:
    svc = services_of(app)
    players = [await make_player() for _ in range(3)]

    async def away(*_: object, **__: object) -> None:
        raise ConnectionError("redis away")

    monkeypatch.setattr(svc.scripts, "apply_scores_of_many", away)
    completions = await asyncio.gather(
        *(complete_flow.complete(svc, p.identity, "boss", None) for p in players)
    )
    # Committed all the same; ranks from PostgreSQL (three at 100 points: rank 1 each).
    assert [(c.new_score, c.rank, c.top10_changed) for c in completions] == [(100, 1, False)] * 3
    assert isinstance(players[0].identity, Identity)
