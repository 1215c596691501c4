"""The ``leaderboard`` command: serve, dev, migrate, token, reconcile, boards, actions."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from app.cli import apikeys as apikeys_cli
from app.cli import boards as boards_cli
from app.cli import issuers as issuers_cli
from app.cli import reconcile as reconcile_cli
from app.core import catalog as catalog_module
from app.core.settings import ConfigError, Settings
from app.core.tokens import issue_access_token
from app.db.accounts import ensure_user, set_password_hash
from app.db.actions import list_actions, upsert_actions
from app.db.migrations import MigrationError, migrate
from app.dev.servers import ServerStartError

DEV_DIR = Path(".leaderboard")
DEV_ENV_FILE = DEV_DIR / "env"
DEMO_USER, DEMO_PASSWORD = "demo", "demo-password"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # The environment is read here, once, and handed on; nothing writes os.environ.
    args.env = dict(os.environ)
    if args.dev_env:
        args.env = _dev_env() | args.env  # what is set in the shell wins
    try:
        return int(args.handler(args) or 0)
    except (ConfigError, MigrationError, catalog_module.CatalogError, ServerStartError) as error:
        print(f"leaderboard: {error}", file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError) as error:
        print(f"leaderboard: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leaderboard", description=__doc__)
    parser.add_argument(
        "--dev-env",
        action="store_true",
        help=f"use the local stack started by `leaderboard dev` (reads {DEV_ENV_FILE})",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the API (configuration from the environment)")
    serve.add_argument("--workers", type=int, default=1, help="processes to run (default 1)")
    serve.set_defaults(handler=_serve)

    dev = commands.add_parser(
        "dev", help="run everything locally: embedded PostgreSQL and Redis, demo data, the API"
    )
    dev.add_argument("--workers", type=int, default=1)
    dev.set_defaults(handler=_dev)

    commands.add_parser("migrate", help="apply pending SQL migrations").set_defaults(
        handler=lambda a: asyncio.run(_migrate(_settings(a)))
    )

    token = commands.add_parser("token", help="create users if missing; print an access token each")
    token.add_argument("names", nargs="+", metavar="NAME")
    token.set_defaults(handler=lambda a: asyncio.run(_tokens(_settings(a), a.names)))

    reconcile_cli.add_command(commands)
    boards_cli.add_command(commands)
    apikeys_cli.add_command(commands)

    actions = commands.add_parser("actions", help="list or load the action catalog")
    action_commands = actions.add_subparsers(required=True, metavar="ACTION_COMMAND")
    action_commands.add_parser("list", help="print the catalog").set_defaults(
        handler=lambda a: asyncio.run(_list_actions(_settings(a)))
    )
    load = action_commands.add_parser("load", help="insert or update actions from a JSON/CSV file")
    load.add_argument("file", type=Path)
    load.set_defaults(handler=lambda a: asyncio.run(_load_actions(_settings(a), a.file)))

    issuers_cli.add_command(commands)
    return parser


# -- serve ------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env(args.env)
    _require_urls(settings)
    settings.check_for_serving()
    return run_hypercorn(settings, args.workers)


def run_hypercorn(settings: Settings, workers: int) -> int:
    """Serve the API and the live endpoint on one port (see app/live/serve.py)."""
    from app.edge import serve

    config = serve.hypercorn_config(settings.host, settings.port)
    return serve.run(config, max(1, workers), settings)


def _require_urls(settings: Settings) -> None:
    missing = [
        n
        for n, v in (("DATABASE_URL", settings.database_url), ("REDIS_URL", settings.redis_url))
        if not v
    ]
    if missing:
        raise ConfigError(
            f"{' and '.join(missing)} not set; use `leaderboard dev` to run with local servers"
        )


# -- dev --------------------------------------------------------------------------------------


def _dev(args: argparse.Namespace) -> int:
    from app.dev.servers import (
        INSTALL_HINT,
        EmbeddedPostgres,
        EmbeddedRedis,
        embedded_servers_installed,
    )

    needs_servers = not (args.env.get("DATABASE_URL") and args.env.get("REDIS_URL"))
    if needs_servers and not embedded_servers_installed():
        print(f"leaderboard: the embedded PostgreSQL/Valkey are not installed; {INSTALL_HINT}")
        return 2
    DEV_DIR.mkdir(exist_ok=True)
    (DEV_DIR / ".gitignore").write_text("*\n")
    env: dict[str, str] = {"LEADERBOARD_DEV": "1", "JWT_SECRET": _dev_secret()}
    given = args.env
    servers: list[EmbeddedPostgres | EmbeddedRedis] = []
    try:
        if not given.get("DATABASE_URL"):
            postgres = EmbeddedPostgres(DEV_DIR / "postgres")
            print("starting PostgreSQL (embedded) ...", flush=True)
            postgres.start()
            servers.append(postgres)
            env["DATABASE_URL"] = postgres.url
        if not given.get("REDIS_URL"):
            redis = EmbeddedRedis(DEV_DIR / "redis", persist=True)
            print("starting Redis-compatible server (embedded Valkey) ...", flush=True)
            redis.start()
            servers.append(redis)
            env["REDIS_URL"] = redis.url
        DEV_ENV_FILE.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        DEV_ENV_FILE.chmod(0o600)
        settings = Settings.from_env(given | env)
        asyncio.run(_prepare_dev_data(settings))
        print(
            f"\n  Leaderboard:   http://localhost:{settings.port}/\n"
            f"  API docs:      http://localhost:{settings.port}/docs\n"
            f"  Demo login:    {DEMO_USER} / {DEMO_PASSWORD}\n"
            f"  More tokens:   leaderboard --dev-env token alice bob\n"
            f"  Stop:          Ctrl-C\n",
            flush=True,
        )
        return run_hypercorn(settings, args.workers)
    finally:
        for server in reversed(servers):
            server.stop()
        DEV_ENV_FILE.unlink(missing_ok=True)


def _dev_secret() -> str:
    # Kept in the local folder so tokens survive a restart of `leaderboard dev`.
    path = DEV_DIR / "jwt_secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


async def _prepare_dev_data(settings: Settings) -> None:
    from app.core.passwords import Passwords

    conn = await asyncpg.connect(settings.database_url)
    try:
        await migrate(conn)
        actions = catalog_module.parse_catalog_file(catalog_module.demo_catalog_path())
        await upsert_actions(conn, actions)
        demo = await ensure_user(conn, DEMO_USER)
        password_hash = await Passwords(
            settings.password_time_cost, settings.password_memory_kib
        ).hash(DEMO_PASSWORD)
        await set_password_hash(conn, demo.user_id, password_hash)
    finally:
        await conn.close()


def _dev_env() -> dict[str, str]:
    if not DEV_ENV_FILE.exists():
        raise SystemExit(
            f"leaderboard: {DEV_ENV_FILE} not found; is `leaderboard dev` running here?"
        )
    lines = DEV_ENV_FILE.read_text().splitlines()
    return dict(line.partition("=")[::2] for line in lines if "=" in line)


# -- operator commands -------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(args.env)


async def _connect(settings: Settings) -> asyncpg.Connection:
    if not settings.database_url:
        raise ConfigError("DATABASE_URL is not set")
    return await asyncpg.connect(settings.database_url)


async def _migrate(settings: Settings) -> int:
    conn = await _connect(settings)
    try:
        applied = await migrate(conn)
    finally:
        await conn.close()
    print(f"applied migrations: {', '.join(map(str, applied))}" if applied else "schema is current")
    return 0


async def _tokens(settings: Settings, names: list[str]) -> int:
    if not settings.jwt_key:
        raise ConfigError("JWT_SECRET is not set")
    conn = await _connect(settings)
    try:
        for name in names:
            identity = await ensure_user(conn, name)
            print(issue_access_token(identity, settings.jwt_key, settings.access_token_ttl_seconds))
    finally:
        await conn.close()
    return 0


async def _list_actions(settings: Settings) -> int:
    conn = await _connect(settings)
    try:
        actions = await list_actions(conn)
    finally:
        await conn.close()
    print(f"{'id':<24} {'points':>6}  {'repeat':<6} {'active':<6} {'verify':<8} name")
    for a in actions:
        active = "yes" if a.active else "no"
        print(f"{a.id:<24} {a.points:>6}  {a.repeat:<6} {active:<6} {a.verification:<8} {a.name}")
    return 0


async def _load_actions(settings: Settings, path: Path) -> int:
    actions = catalog_module.parse_catalog_file(path)
    conn = await _connect(settings)
    try:
        count = await upsert_actions(conn, actions)
    finally:
        await conn.close()
    print(f"loaded {count} actions from {path} (running servers pick them up within 30 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
