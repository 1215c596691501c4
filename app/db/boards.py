"""SQL of boards: definitions (``boards``), per-board scores (``board_scores``), and reads.

Every read is one query for every board and period: over ``users.score`` for the all-time
board and over ``board_scores`` for every other. Reads are in the one ranking order
(``score DESC, reached_at ASC, user_id DESC``) and use keysets, never offsets: a page starts
right after the last row of the previous one, however many rows moved meanwhile.

Ranks come with each run of consecutive rows from the same snapshot: the number of rows
scoring above the run's first row, and at or above it (``ranked`` turns them into shared
ranks), so a page never needs one count per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from app.core.board_reads import BoardCatalog
from app.core.boards import ALL_TIME, Board, RowKey, Window
from app.core.errors import InvalidInput
from app.core.ports import PublicUser, RankedRow, RankedRun, RecentCompletion, UserStanding
from app.core.ranking import BoardEntry

INSERT_BOARD_SQL = """
INSERT INTO boards (id, name, window_kind, action_tag, starts_at, ends_at)
VALUES ($1, $2, $3, $4, $5, $6)
"""

END_BOARD_SQL = """
UPDATE boards SET ended_at = COALESCE($2, now())
 WHERE id = $1 AND ended_at IS NULL
RETURNING id, name, window_kind, action_tag, starts_at, ends_at, ended_at
"""

# The built-in boards first (all time, today, this week, this month), then the others in the
# order they were made.
LIST_BOARDS_SQL = """
SELECT id, name, window_kind, action_tag, starts_at, ends_at, ended_at
  FROM boards
 ORDER BY array_position(ARRAY['all-time', 'daily', 'weekly', 'monthly'], id::text) NULLS LAST,
          created_at, id
"""

# -- reads: every statement is one snapshot -----------------------------------------------------

# Every read below is written once over `{rankings}`: the rows of one board and period with
# (board_id, period, user_id, score, reached_at, updated_at). Two versions are made of each:
# over board_scores, and over users for the all-time board (its scores are users.score). The
# planner then serves each from its own ranking index; a UNION ALL of both in one view got
# generic plans that scanned users for every board.
#
# Banned players are in no ranking: their scores stay (an unban restores them) but every read
# skips them. Rows are read from `{rankings}`, the visible rows (the few banned users are a
# small partial index, sql/005, so skipping them is a hashed lookup beside each ranking-index
# scan). Counts, which visit many rows, are taken over `{every}` row (an index-only scan, as
# before bans) less those of `{banned}` users (found through that small index): filtering
# each counted row instead made a count over a large period four times slower.
_BOARD_SCORES = """(SELECT * FROM board_scores s
                     WHERE NOT EXISTS (SELECT FROM users b
                                        WHERE b.id = s.user_id AND b.banned_at IS NOT NULL))"""
_BOARD_SCORES_EVERY = "board_scores"
_BOARD_SCORES_BANNED = """(SELECT s.* FROM users b JOIN board_scores s ON s.user_id = b.id
                            WHERE b.banned_at IS NOT NULL)"""
_USERS_OF = """(SELECT 'all-time'::text AS board_id, 'all'::text AS period, id AS user_id,
                    score, reached_at, updated_at
               FROM users WHERE score > 0{which})"""
_USERS = _USERS_OF.format(which=" AND banned_at IS NULL")
_USERS_EVERY = _USERS_OF.format(which="")
_USERS_BANNED = _USERS_OF.format(which=" AND banned_at IS NOT NULL")

# The tail shared by pages and around: given `run` (consecutive rows in ranking order), count
# the rows scoring above and at-or-above its first row, and add the usernames.
_RANK_RUN = """
head AS (
    SELECT max(score) AS top FROM run
), counted AS (
    SELECT count(*) FILTER (WHERE r.score > head.top) AS above, count(*) AS at_or_above
      FROM {every} r, head
     WHERE r.board_id = $1 AND r.period = $2 AND r.score >= head.top
), hidden AS (
    SELECT count(*) FILTER (WHERE r.score > head.top) AS above, count(*) AS at_or_above
      FROM {banned} r, head
     WHERE r.board_id = $1 AND r.period = $2 AND r.score >= head.top
), counts AS (
    SELECT counted.above - hidden.above AS above,
           counted.at_or_above - hidden.at_or_above AS at_or_above
      FROM counted, hidden
)
SELECT run.user_id::text AS user_id, u.username, run.score, run.reached_at,
       counts.above, counts.at_or_above
  FROM run JOIN users u ON u.id = run.user_id, counts
 ORDER BY run.score DESC, run.reached_at ASC, run.user_id DESC
"""

# Up to $3 rows after the key ($4 score, $5 reached_at, $6 user id; $4 NULL: from the top):
# those tied with the key and listed after it, then those below. Each branch is one range
# scan of a ranking index.
_PAGE = """
WITH run AS (
    SELECT * FROM (
        (SELECT r.user_id, r.score, r.reached_at FROM {rankings} r
          WHERE r.board_id = $1 AND r.period = $2 AND $4::bigint IS NULL
          ORDER BY r.score DESC, r.reached_at ASC, r.user_id DESC LIMIT $3)
        UNION ALL
        (SELECT r.user_id, r.score, r.reached_at FROM {rankings} r
          WHERE r.board_id = $1 AND r.period = $2 AND r.score = $4
            AND (r.reached_at > $5 OR (r.reached_at = $5 AND r.user_id < $6))
          ORDER BY r.score DESC, r.reached_at ASC, r.user_id DESC LIMIT $3)
        UNION ALL
        (SELECT r.user_id, r.score, r.reached_at FROM {rankings} r
          WHERE r.board_id = $1 AND r.period = $2 AND r.score < $4
          ORDER BY r.score DESC, r.reached_at ASC, r.user_id DESC LIMIT $3)
    ) AS after_key
    ORDER BY score DESC, reached_at ASC, user_id DESC LIMIT $3
),"""

# The user's ($3) row with up to $4 rows listed before it and up to $4 after it.
_AROUND = """
WITH me AS (
    SELECT r.user_id, r.score, r.reached_at FROM {rankings} r
     WHERE r.board_id = $1 AND r.period = $2 AND r.user_id = $3
), before AS (
    SELECT x.* FROM me, LATERAL (
        (SELECT r.user_id, r.score, r.reached_at FROM {rankings} r
          WHERE r.board_id = $1 AND r.period = $2 AND r.score = me.score
            AND (r.reached_at < me.reached_at
                 OR (r.reached_at = me.reached_at AND r.user_id > me.user_id))
          ORDER BY r.score ASC, r.reached_at DESC, r.user_id ASC LIMIT $4)
        UNION ALL
        (SELECT r.user_id, r.score, r.reached_at FROM {rankings} r
          WHERE r.board_id = $1 AND r.period = $2 AND r.score > me.score
          ORDER BY r.score ASC, r.reached_at DESC, r.user_id ASC LIMIT $4)
    ) AS x
    ORDER BY x.score ASC, x.reached_at DESC, x.user_id ASC LIMIT $4
), after AS (
    SELECT x.* FROM me, LATERAL (
        (SELECT r.user_id, r.score, r.reached_at FROM {rankings} r
          WHERE r.board_id = $1 AND r.period = $2 AND r.score = me.score
            AND (r.reached_at > me.reached_at
                 OR (r.reached_at = me.reached_at AND r.user_id < me.user_id))
          ORDER BY r.score DESC, r.reached_at ASC, r.user_id DESC LIMIT $4)
        UNION ALL
        (SELECT r.user_id, r.score, r.reached_at FROM {rankings} r
          WHERE r.board_id = $1 AND r.period = $2 AND r.score < me.score
          ORDER BY r.score DESC, r.reached_at ASC, r.user_id DESC LIMIT $4)
    ) AS x
    ORDER BY x.score DESC, x.reached_at ASC, x.user_id DESC LIMIT $4
), run AS (
    SELECT * FROM before UNION ALL SELECT * FROM me UNION ALL SELECT * FROM after
),"""

_TOTAL = """
SELECT (SELECT count(*) FROM {every} r WHERE r.board_id = $1 AND r.period = $2)
     - (SELECT count(*) FROM {banned} r WHERE r.board_id = $1 AND r.period = $2)
"""

_RANK = """
SELECT r.score, 1 + (SELECT count(*) FROM {every} o
                      WHERE o.board_id = $1 AND o.period = $2 AND o.score > r.score)
                  - (SELECT count(*) FROM {banned} o
                      WHERE o.board_id = $1 AND o.period = $2 AND o.score > r.score) AS rank
  FROM {rankings} r
 WHERE r.board_id = $1 AND r.period = $2 AND r.user_id = $3
"""

# Standings of one (board, period) changed since $3, for seeding and repairing Redis.
_STANDINGS = """
SELECT r.user_id::text AS user_id, u.username, r.score, r.reached_at
  FROM {rankings} r JOIN users u ON u.id = r.user_id
 WHERE r.board_id = $1 AND r.period = $2 AND r.updated_at >= $3
"""


@dataclass(frozen=True)
class _Versions:
    scores: str  # over board_scores
    users: str  # over users (the all-time board)

    def of(self, board_id: str) -> str:
        return self.users if board_id == ALL_TIME else self.scores


def _versions(*parts: str) -> _Versions:
    template = "".join(parts)
    return _Versions(
        template.format(
            rankings=_BOARD_SCORES, every=_BOARD_SCORES_EVERY, banned=_BOARD_SCORES_BANNED
        ),
        template.format(rankings=_USERS, every=_USERS_EVERY, banned=_USERS_BANNED),
    )


PAGE_SQL = _versions(_PAGE, _RANK_RUN)
AROUND_SQL = _versions(_AROUND, _RANK_RUN)
TOTAL_SQL = _versions(_TOTAL)
RANK_SQL = _versions(_RANK)
STANDINGS_SQL = _versions(_STANDINGS)

RECENT_SQL = """
SELECT h.action_id, a.name, h.score_change, h.created_at
  FROM score_history h
  JOIN actions a ON a.id = h.action_id
 WHERE h.user_id = $1
 ORDER BY h.created_at DESC
 LIMIT $2
"""

USER_SQL = "SELECT id::text AS user_id, username, created_at FROM users WHERE id = $1"

# Periods of a board that have scores, newest first: a skip scan of the ranking index (one
# probe per period), never a scan of the scores.
PERIODS_SQL = """
WITH RECURSIVE found (period) AS (
    (SELECT period FROM board_scores WHERE board_id = $1 ORDER BY period DESC LIMIT 1)
    UNION ALL
    SELECT (SELECT s.period FROM board_scores s
             WHERE s.board_id = $1 AND s.period < found.period
             ORDER BY s.period DESC LIMIT 1)
      FROM found WHERE found.period IS NOT NULL
)
SELECT period FROM found WHERE period IS NOT NULL LIMIT $2
"""


class BoardExists(InvalidInput):
    def __init__(self, board_id: str) -> None:
        super().__init__(f"There is a board {board_id!r} already.", field="boardId")


@dataclass(frozen=True)
class Row:
    """One ranked row as PostgreSQL holds it."""

    user_id: str
    username: str
    score: int
    reached_at: datetime

    @property
    def key(self) -> RowKey:
        return RowKey.of(self.score, self.reached_at, self.user_id)


@dataclass(frozen=True)
class Run:
    """Consecutive rows in ranking order, with what ranks them (from the same snapshot)."""

    rows: list[Row]
    above: int  # rows scoring more than the first row
    at_or_above: int  # rows scoring at least as much as the first row

    def entries(self) -> list[BoardEntry]:
        return ranked(self.rows, self.above, self.at_or_above)


def ranked(rows: list[Row], above: int, at_or_above: int) -> list[BoardEntry]:
    """Shared ranks (1 + the number of higher scores) for consecutive rows, knowing only how
    many rows score above and at-or-above the first one."""
    entries: list[BoardEntry] = []
    if not rows:
        return entries
    top = rows[0].score
    tied_with_top = sum(1 for r in rows if r.score == top)
    rank = above + 1
    previous = top
    for position, row in enumerate(rows, start=1):
        if row.score != previous:
            # Above this row: everyone at or above the top score, plus the rows of this run
            # between the top's group and this one.
            rank = at_or_above + position - tied_with_top
            previous = row.score
        entries.append(BoardEntry(row.user_id, row.username, row.score, rank))
    return entries


def board_from_row(row: asyncpg.Record) -> Board:
    return Board(
        id=row["id"],
        name=row["name"],
        window=Window(row["window_kind"]),
        action_tag=row["action_tag"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        ended_at=row["ended_at"],
    )


async def list_boards(conn: asyncpg.Connection | asyncpg.Pool) -> list[Board]:
    rows = await conn.fetch(LIST_BOARDS_SQL)
    return [board_from_row(r) for r in rows]


async def refresh_boards(catalog: BoardCatalog, conn: asyncpg.Connection | asyncpg.Pool) -> None:
    """Replace the node's copy of the board definitions with the table's."""
    catalog.replace(await list_boards(conn))


async def insert_board(conn: asyncpg.Connection | asyncpg.Pool, board: Board) -> None:
    try:
        await conn.execute(
            INSERT_BOARD_SQL,
            board.id,
            board.name,
            board.window.value,
            board.action_tag,
            board.starts_at,
            board.ends_at,
        )
    except asyncpg.UniqueViolationError:
        raise BoardExists(board.id) from None


async def end_board(
    conn: asyncpg.Connection | asyncpg.Pool, board_id: str, at: datetime | None = None
) -> Board | None:
    """Stop the board counting (now, or at ``at``); None when there is no such open board."""
    row = await conn.fetchrow(END_BOARD_SQL, board_id, at)
    return None if row is None else board_from_row(row)


def _rows(records: list[asyncpg.Record]) -> Run:
    rows = [Row(r["user_id"], r["username"], r["score"], r["reached_at"]) for r in records]
    if not records:
        return Run([], 0, 0)
    return Run(rows, int(records[0]["above"]), int(records[0]["at_or_above"]))


async def page(
    conn: asyncpg.Connection | asyncpg.Pool,
    board_id: str,
    period: str,
    limit: int,
    after: RowKey | None = None,
) -> Run:
    """Up to ``limit`` rows right after ``after`` (from the top when None)."""
    records = await conn.fetch(
        PAGE_SQL.of(board_id),
        board_id,
        period,
        limit,
        after.score if after else None,
        after.reached_at if after else None,
        after.user_id if after else None,
    )
    return _rows(list(records))


async def around(
    conn: asyncpg.Connection | asyncpg.Pool,
    board_id: str,
    period: str,
    user_id: str,
    radius: int,
) -> Run:
    """The user's row with up to ``radius`` rows above and below; empty when unranked."""
    records = await conn.fetch(AROUND_SQL.of(board_id), board_id, period, user_id, radius)
    return _rows(list(records))


async def total(conn: asyncpg.Connection | asyncpg.Pool, board_id: str, period: str) -> int:
    return int(await conn.fetchval(TOTAL_SQL.of(board_id), board_id, period))


async def periods(conn: asyncpg.Connection | asyncpg.Pool, board_id: str, limit: int) -> list[str]:
    """The board's periods that have scores, newest first (not the all-time board)."""
    return [r["period"] for r in await conn.fetch(PERIODS_SQL, board_id, limit)]


async def user_boards(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: str, wanted: list[tuple[str, str]]
) -> list[UserStanding]:
    """The user's score and rank on each wanted (board, period) where they have points."""
    found = []
    for board_id, period in wanted:
        row = await conn.fetchrow(RANK_SQL.of(board_id), board_id, period, user_id)
        if row is not None:
            found.append(UserStanding(board_id, period, row["score"], row["rank"]))
    return found


async def recent_completions(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: str, limit: int = 20
) -> list[RecentCompletion]:
    records = await conn.fetch(RECENT_SQL, user_id, limit)
    return [
        RecentCompletion(r["action_id"], r["name"], r["score_change"], r["created_at"])
        for r in records
    ]


async def public_user(conn: asyncpg.Connection | asyncpg.Pool, user_id: str) -> PublicUser | None:
    row = await conn.fetchrow(USER_SQL, user_id)
    return None if row is None else PublicUser(row["user_id"], row["username"], row["created_at"])


class PgBoards:
    """The BoardStore port on a PostgreSQL pool (the read replica when there is one)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def page(self, board_id: str, period: str, limit: int, after: RowKey | None) -> RankedRun:
        return _ranked(
            await page(self._pool, board_id, period, limit, after),
            await total(self._pool, board_id, period),
        )

    async def around(self, board_id: str, period: str, user_id: str, radius: int) -> RankedRun:
        return _ranked(
            await around(self._pool, board_id, period, user_id, radius),
            await total(self._pool, board_id, period),
        )

    async def standings(self, user_id: str, wanted: list[tuple[str, str]]) -> list[UserStanding]:
        return await user_boards(self._pool, user_id, wanted)

    async def recent(self, user_id: str, limit: int) -> list[RecentCompletion]:
        return await recent_completions(self._pool, user_id, limit)

    async def public_user(self, user_id: str) -> PublicUser | None:
        return await public_user(self._pool, user_id)

    async def periods(self, board_id: str, limit: int) -> list[str]:
        return await periods(self._pool, board_id, limit)


def _ranked(run: Run, count: int) -> RankedRun:
    rows = [
        RankedRow(e.user_id, e.username, e.score, e.rank, r.key)
        for e, r in zip(run.entries(), run.rows, strict=True)
    ]
    return RankedRun(rows, count)


# -- admin edits (app/http/api_admin_catalog.py) ------------------------------------------------

LOCK_BOARD_SQL = """
SELECT id, name, window_kind, action_tag, starts_at, ends_at, ended_at
  FROM boards WHERE id = $1 FOR UPDATE
"""

UPDATE_BOARD_SQL = """
UPDATE boards SET name = $2, starts_at = $3, ends_at = $4
 WHERE id = $1
RETURNING id, name, window_kind, action_tag, starts_at, ends_at, ended_at
"""


async def lock_board(conn: asyncpg.Connection, board_id: str) -> Board | None:
    """The board, locked until the transaction ends (an edit reads then writes it)."""
    row = await conn.fetchrow(LOCK_BOARD_SQL, board_id)
    return None if row is None else board_from_row(row)


async def update_board(conn: asyncpg.Connection, board: Board) -> Board:
    """Write a board's name and range (its id, window and tag never change)."""
    row = await conn.fetchrow(
        UPDATE_BOARD_SQL, board.id, board.name, board.starts_at, board.ends_at
    )
    return board_from_row(row)
