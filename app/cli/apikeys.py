"""``leaderboard apikeys create|list|revoke``: the API keys game servers award with.

``create`` prints the key once: only its SHA-256 digest is stored, so it cannot be shown
again (create another and revoke the lost one). A revoked key is refused from the next
request on, on every server. Exit status: 0 done, 1 no such key, 2 a refused name.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from typing import Any

import asyncpg
import orjson

from app.core.awards import AWARD, SCOPES, key_digest, new_key_secret
from app.core.ranking import iso
from app.core.settings import ConfigError, Settings
from app.db import api_keys as db_keys

EXIT_NOT_FOUND, EXIT_REFUSED = 1, 2
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def add_command(commands: Any) -> None:
    """Register ``apikeys`` on the CLI's subcommands."""
    parser = commands.add_parser("apikeys", help="create, list or revoke game-server API keys")
    key_commands = parser.add_subparsers(required=True, metavar="APIKEYS_COMMAND")

    create = key_commands.add_parser(
        "create",
        help="create a key and print it (once)",
        description="Example: `leaderboard apikeys create arena-server --scope award`.",
    )
    create.add_argument("name", metavar="NAME", help="1-64 characters: letters, digits, _ . -")
    create.add_argument(
        "--scope",
        dest="scopes",
        action="append",
        choices=sorted(SCOPES),
        help="what the key may do (repeatable; default award): `award` is POST /api/server/awards",
    )
    create.set_defaults(handler=lambda a: _run(a, _create(a.name, a.scopes or [AWARD])))

    listing = key_commands.add_parser("list", help="print every key (never the key itself)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=lambda a: _run(a, _list(a.json)))

    revoke = key_commands.add_parser("revoke", help="revoke a key: refused from now on")
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


def _create(name: str, scopes: list[str]) -> Job:
    async def job(conn: asyncpg.Connection) -> int:
        if not NAME.fullmatch(name):
            print(
                "leaderboard: a key name is 1-64 letters, digits, '_', '.' or '-'", file=sys.stderr
            )
            return EXIT_REFUSED
        secret = new_key_secret()
        try:
            await db_keys.create_key(conn, name, key_digest(secret), scopes)
        except db_keys.NameTaken:
            print(f"leaderboard: a key named {name!r} exists", file=sys.stderr)
            return EXIT_REFUSED
        # The one time the key is shown: stdout alone, so `$(leaderboard apikeys create ...)`
        # captures exactly the key; the advice goes to stderr.
        print(secret)
        print(
            f"created API key {name!r} ({', '.join(sorted(set(scopes)))}); store it now, it "
            "cannot be shown again. Send it as `Authorization: ApiKey <key>`.",
            file=sys.stderr,
        )
        return 0

    return job


def _list(as_json: bool) -> Job:
    async def job(conn: asyncpg.Connection) -> int:
        keys = await db_keys.list_keys(conn)
        if as_json:
            described = [
                {
                    "name": k.name,
                    "scopes": list(k.scopes),
                    "createdAt": iso(k.created_at),
                    "revokedAt": iso(k.revoked_at) if k.revoked_at else None,
                }
                for k in keys
            ]
            print(orjson.dumps(described).decode())
            return 0
        print(f"{'name':<32} {'scopes':<12} {'created':<26} state")
        for k in keys:
            state = f"revoked {iso(k.revoked_at)}" if k.revoked_at else "active"
            print(f"{k.name:<32} {','.join(k.scopes):<12} {iso(k.created_at):<26} {state}")
        return 0

    return job


def _revoke(name: str) -> Job:
    async def job(conn: asyncpg.Connection) -> int:
        if not await db_keys.revoke_key(conn, name):
            print(f"leaderboard: no API key {name!r}", file=sys.stderr)
            return EXIT_NOT_FOUND
        print(f"revoked API key {name!r}; it is refused from the next request on")
        return 0

    return job
