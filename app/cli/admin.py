"""``leaderboard admin grant|revoke|list``: who may use the admin console and /api/admin.

A change takes effect at the next admin request (the role is read from the database on every
one), and is written to the audit log with the operator as its actor. Exit status: 0 done
(or already so), 1 no such account.
"""

from __future__ import annotations

import sys
from typing import Any

import asyncpg

from app.cli.database_job import EXIT_NOT_FOUND, Job, run_job
from app.db import admin as db_admin


def add_command(commands: Any) -> None:
    """Register ``admin`` on the CLI's subcommands."""
    parser = commands.add_parser("admin", help="grant or revoke the admin role")
    admin_commands = parser.add_subparsers(required=True, metavar="ADMIN_COMMAND")
    grant = admin_commands.add_parser("grant", help="make an account an admin")
    grant.add_argument("name", metavar="NAME", help="the account's username")
    grant.set_defaults(handler=lambda a: run_job(a, _set_role(a.name, "admin")))
    revoke = admin_commands.add_parser("revoke", help="make an admin a player again (at once)")
    revoke.add_argument("name", metavar="NAME", help="the account's username")
    revoke.set_defaults(handler=lambda a: run_job(a, _set_role(a.name, "player")))
    listing = admin_commands.add_parser("list", help="print every admin")
    listing.set_defaults(handler=lambda a: run_job(a, _list))


def _set_role(name: str, role: str) -> Job:
    async def job(conn: asyncpg.Connection) -> int:
        change = await db_admin.set_role(conn, name, role)
        if change is None:
            print(f"leaderboard: no account {name!r}", file=sys.stderr)
            return EXIT_NOT_FOUND
        who = change.identity.username
        if not change.changed:
            print(f"{who} is already {'an admin' if role == 'admin' else 'a player'}")
        elif role == "admin":
            print(f"{who} is now an admin")
        else:
            print(f"{who} is no longer an admin (refused from their next admin request)")
        return 0

    return job


async def _list(conn: asyncpg.Connection) -> int:
    for identity in await db_admin.list_admins(conn):
        print(f"{identity.username}\t{identity.user_id}")
    return 0
