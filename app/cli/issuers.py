"""``leaderboard issuers create|list|revoke``: the game servers that sign receipts.

``create`` prints the new secret once (it cannot be shown again: give it to the game server
now); ``list`` never shows secrets; ``revoke`` refuses that issuer's receipts at once, on every
node. Exit status: 0 done, 1 no such issuer, 2 a refused name.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from typing import Any

import asyncpg
import orjson

from app.core.ranking import iso
from app.core.settings import ConfigError, Settings
from app.core.verification import ISSUER_NAME, RESERVED_ISSUER_NAMES, valid_issuer_name
from app.db import issuers as db_issuers

EXIT_NOT_FOUND, EXIT_REFUSED = 1, 2
SECRET_BYTES = 32  # 256 bits: HS256's own size


def add_command(commands: Any) -> None:
    """Register ``issuers`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "issuers", help="create, list or revoke receipt issuers (game servers)"
    )
    issuer_commands = parser.add_subparsers(required=True, metavar="ISSUERS_COMMAND")

    create = issuer_commands.add_parser(
        "create", help="register a game server; prints its signing secret once"
    )
    create.add_argument(
        "name",
        metavar="NAME",
        help="the receipts' iss claim: letters, digits, '_', '.', ':', '-' (1-64)",
    )
    create.set_defaults(handler=lambda a: _run(a, _create(a.name)))

    listing = issuer_commands.add_parser("list", help="print every issuer (never a secret)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=lambda a: _run(a, _list(a.json)))

    revoke = issuer_commands.add_parser("revoke", help="refuse this issuer's receipts from now")
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(handler=lambda a: _run(a, _revoke(a.name)))


Job = Any  # a coroutine function taking a connection and returning an exit status


def _run(args: argparse.Namespace, job: Job) -> int:
    settings = Settings.from_env(args.env)
    if not settings.database_url:
        raise ConfigError("DATABASE_URL is not set")
    return asyncio.run(_with_connection(settings.database_url, job))


async def _with_connection(url: str, job: Job) -> int:
    conn = await asyncpg.connect(url)
    try:
        status: int = await job(conn)
        return status
    finally:
        await conn.close()


def _create(name: str) -> Job:
    async def job(conn: asyncpg.Connection) -> int:
        if not valid_issuer_name(name):
            print(
                f"leaderboard: an issuer name must match {ISSUER_NAME.pattern} and not be "
                f"{', '.join(sorted(RESERVED_ISSUER_NAMES))}",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        secret = secrets.token_urlsafe(SECRET_BYTES)
        if not await db_issuers.create_issuer(conn, name, secret):
            print(
                f"leaderboard: the issuer {name!r} exists (names are unique ignoring case; a "
                "revoked name is never reused)",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        # The only time the secret is shown: to stdout, for the operator to hand on.
        print(f"created issuer {name}; its HS256 secret (shown only now):", file=sys.stderr)
        print(secret)
        return 0

    return job


def _list(as_json: bool) -> Job:
    async def job(conn: asyncpg.Connection) -> int:
        found = await db_issuers.list_issuers(conn)
        if as_json:
            print(
                orjson.dumps(
                    [
                        {
                            "name": i.name,
                            "createdAt": iso(i.created_at),
                            "revokedAt": iso(i.revoked_at) if i.revoked_at else None,
                        }
                        for i in found
                    ]
                ).decode()
            )
            return 0
        print(f"{'name':<40} {'created':<24} revoked")
        for issuer in found:
            revoked = iso(issuer.revoked_at) if issuer.revoked_at else "-"
            print(f"{issuer.name:<40} {iso(issuer.created_at):<24} {revoked}")
        return 0

    return job


def _revoke(name: str) -> Job:
    async def job(conn: asyncpg.Connection) -> int:
        revoked_at = await db_issuers.revoke_issuer(conn, name)
        if revoked_at is None:
            print(f"leaderboard: no issuer {name!r}", file=sys.stderr)
            return EXIT_NOT_FOUND
        print(f"revoked issuer {name} at {iso(revoked_at)}; its receipts are refused from now")
        return 0

    return job
