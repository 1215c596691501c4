"""Group apply: the applies of completions committed together go to Redis in one round trip.

A group commit (app/db/group_commit.py) answers all its callers at once, and each then
applies its score: N pipelines, N connection checkouts, N socket writes in the same instant.
Here the applies asked for in one turn of the event loop go together, one pipeline for all
(``LeaderboardCache.apply_many``), each caller still getting its own result. Nothing waits for
a timer: the group is sent on the loop's next turn, which a lone apply reaches at once.

Every apply is idempotent and the script keeps the newer of two standings, so the order of
the commits inside one pipeline does not matter. When Redis fails the whole group answers
None, as a lone apply would (the core ranks from PostgreSQL then).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from app.core.ports import Committed
from app.redis.ranking_cache import LeaderboardCache
from app.redis.scripts import ApplyResult

MAX_GROUP = 64


@dataclass
class _Pending:
    committed: Committed
    answer: asyncio.Future[ApplyResult | None] = field(repr=False)


class GroupApply:
    """The RankingCache port over a LeaderboardCache, applies grouped as above."""

    def __init__(self, cache: LeaderboardCache, max_group: int = MAX_GROUP) -> None:
        self._cache = cache
        self._max_group = max_group
        self._queue: list[_Pending] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.groups = 0  # round trips that carried more than one commit (tests, metrics)

    async def apply(self, committed: Committed) -> ApplyResult | None:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[ApplyResult | None] = loop.create_future()
        self._queue.append(_Pending(committed, answer))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._send)
        # Shielded: a caller that gives up does not cancel the others' round trip.
        return await asyncio.shield(answer)

    def _send(self) -> None:
        self._scheduled = False
        queue, self._queue = self._queue, []
        loop = asyncio.get_running_loop()
        for start in range(0, len(queue), self._max_group):
            group = queue[start : start + self._max_group]
            task = loop.create_task(self._run(group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, group: list[_Pending]) -> None:
        if len(group) > 1:
            self.groups += 1
        try:
            results = await self._cache.apply_many([p.committed for p in group])
        except Exception as error:
            for pending in group:
                if not pending.answer.done():
                    pending.answer.set_exception(error)
            return
        for pending, result in zip(group, results, strict=True):
            if not pending.answer.done():
                pending.answer.set_result(result)
