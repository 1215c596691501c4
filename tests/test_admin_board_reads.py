"""PostgreSQL's board reads skip banned players: pages, ranks, around, totals, the top 10
fallback and profile ranks, on the all-time board and on a period board alike."""

from __future__ import annotations

from datetime import UTC, datetime

from app.core.boards import BUILT_IN_BOARDS
from app.db import boards as db_boards
from app.db.accounts import ensure_user
from app.db.completions import commit_completion
from app.db.profiles import RANK_SQL
from app.db.standings import top_rows


async def test_banned_players_are_in_no_database_read(db, catalog_loaded) -> None:  # type: ignore[no-untyped-def]
    weekly = next(b for b in BUILT_IN_BOARDS if b.id == "weekly").current_period(datetime.now(UTC))
    assert weekly is not None
    scores = {"ann": ["boss"], "bob": ["level_a", "quiz_a"], "cat": ["level_a"], "dan": ["quiz_a"]}
    ids = {}
    for name, actions in scores.items():
        ids[name] = (await ensure_user(db, name)).user_id
        for action in actions:
            assert await commit_completion(db, ids[name], action) is not None
    await db.execute("UPDATE users SET banned_at = now() WHERE username = 'bob'")  # 60 points

    for board, period in (("all-time", "all"), ("weekly", weekly.id)):
        run = await db_boards.page(db, board, period, 10)
        assert [(e.username, e.score, e.rank) for e in run.entries()] == [
            ("ann", 100, 1),
            ("cat", 50, 2),
            ("dan", 10, 3),
        ], board
        assert await db_boards.total(db, board, period) == 3
        second = await db_boards.page(db, board, period, 10, after=run.rows[0].key)
        assert [(e.username, e.rank) for e in second.entries()] == [("cat", 2), ("dan", 3)]
        around = await db_boards.around(db, board, period, ids["dan"], 1)
        assert [(e.username, e.rank) for e in around.entries()] == [("cat", 2), ("dan", 3)]
        assert (await db_boards.around(db, board, period, ids["bob"], 1)).rows == []
        standings = await db_boards.user_boards(db, ids["cat"], [(board, period)])
        assert [(s.score, s.rank) for s in standings] == [(50, 2)]
    assert [r["username"] for r in await top_rows(db)] == ["ann", "cat", "dan"]
    assert await db.fetchval(RANK_SQL, 50) == 2
