"""``leaderboard boards list|create|end``: the boards an operator runs (tournaments, tags).

Running servers pick up a change within ``CATALOG_REFRESH_SECONDS``; the database counts a new
board from the moment it is created (the commit reads the ``boards`` table). Exit status: 0
done, 1 no such board, 2 a refused definition.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from app.cli.database_job import EXIT_NOT_FOUND, Job, run_job
from app.core.boards import BUILT_IN_IDS, Board, new_board
from app.core.errors import InvalidInput
from app.core.ranking import iso
from app.db import boards as db_boards


def add_command(commands: Any) -> None:
    """Register ``boards`` on the CLI's subcommands."""
    parser = commands.add_parser("boards", help="list, create or end boards (tournaments, tags)")
    board_commands = parser.add_subparsers(required=True, metavar="BOARDS_COMMAND")

    listing = board_commands.add_parser("list", help="print every board and its current period")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=lambda a: run_job(a, _list(a.json)))

    create = board_commands.add_parser(
        "create",
        help="create a board",
        description="Examples: `boards create quiz-week --name 'Quiz week' --window week "
        "--tag quiz`; `boards create winter-cup --name 'Winter cup' --window tournament "
        "--starts 2026-12-01T18:00Z --ends 2026-12-03T18:00Z`.",
    )
    create.add_argument("board_id", metavar="ID", help="a slug: a-z, 0-9 and '-'")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--window", required=True, choices=["all", "day", "week", "month", "tournament"]
    )
    create.add_argument("--tag", help="count only actions with this tag")
    create.add_argument("--starts", type=_instant, help="a tournament's start (ISO 8601)")
    create.add_argument("--ends", type=_instant, help="a tournament's end (ISO 8601, exclusive)")
    create.set_defaults(handler=lambda a: run_job(a, _create(a)))

    end = board_commands.add_parser("end", help="stop a board counting (its periods stay)")
    end.add_argument("board_id", metavar="ID")
    end.set_defaults(handler=lambda a: run_job(a, _end(a.board_id)))


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone (e.g. {text}Z for UTC)")
    return moment


def _list(as_json: bool) -> Job:
    async def job(conn: asyncpg.Connection) -> int:
        now = datetime.now(UTC)
        boards = await db_boards.list_boards(conn)
        if as_json:
            print(orjson.dumps([_describe(b, now) for b in boards]).decode())
            return 0
        print(f"{'id':<20} {'window':<10} {'period':<12} {'tag':<10} {'state':<8} name")
        for board in boards:
            period = board.current_period(now)
            state = "ended" if board.ended_at else ("open" if period else "closed")
            print(
                f"{board.id:<20} {board.window.value:<10} {period.id if period else '-':<12} "
                f"{board.action_tag or '-':<10} {state:<8} {board.name}"
            )
        return 0

    return job


def _describe(board: Board, now: datetime) -> dict[str, Any]:
    described = board.as_json(now)
    described["endedAt"] = iso(board.ended_at) if board.ended_at else None
    if board.starts_at and board.ends_at:
        described["startsAt"], described["endsAt"] = iso(board.starts_at), iso(board.ends_at)
    return described


def _create(args: argparse.Namespace) -> Job:
    async def job(conn: asyncpg.Connection) -> int:
        board = new_board(
            args.board_id,
            args.name,
            args.window,
            action_tag=args.tag,
            starts_at=args.starts,
            ends_at=args.ends,
        )
        await db_boards.insert_board(conn, board)
        print(f"created board {board.id} ({board.window.value}); servers list it within 30 s")
        return 0

    return job


def _end(board_id: str) -> Job:
    async def job(conn: asyncpg.Connection) -> int:
        if board_id in BUILT_IN_IDS:
            raise InvalidInput(f"{board_id!r} is a built-in board; it cannot end.")
        ended = await db_boards.end_board(conn, board_id)
        if ended is None:
            print(f"leaderboard: no open board {board_id!r}", file=sys.stderr)
            return EXIT_NOT_FOUND
        assert ended.ended_at is not None
        print(f"ended board {board_id} at {iso(ended.ended_at)}; its periods stay readable")
        return 0

    return job
