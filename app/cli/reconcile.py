"""``leaderboard reconcile [--full] [--dry-run] [--json]``: the reconciler, run by an operator.

Takes the same lock as the nodes' periodic job, so it never runs beside one; prints what it
found and fixed, and its progress on a large table. Exit status: 0 done, 1 failed, 3 another
reconcile holds the lock.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import asyncpg
import orjson
from redis.exceptions import RedisError

from app.core.board_reads import BoardCatalog
from app.core.settings import ConfigError, Settings
from app.db.boards import refresh_boards
from app.redis.client import redis_from_url
from app.redis.keys import Keys
from app.redis.lock import LockLost, ReconcileLock
from app.redis.scripts import Scripts
from app.repair.reconcile import Reconciler

EXIT_FAILED, EXIT_BUSY = 1, 3
# Progress lines only for scans long enough to wonder about, and at most this often.
PROGRESS_MIN_USERS = 20_000
PROGRESS_EVERY_SECONDS = 2.0


def add_command(commands: Any) -> None:
    """Register ``reconcile`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "reconcile", help="repair the Redis ranking from PostgreSQL and report the drift"
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="rebuild the whole ranking (also drops users Redis holds but the database lacks)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="only report the drift; change nothing"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(
        handler=lambda a: asyncio.run(run(Settings.from_env(a.env), a.full, a.dry_run, a.json))
    )


async def run(settings: Settings, full: bool, dry_run: bool, as_json: bool) -> int:
    if not settings.database_url or not settings.redis_url:
        raise ConfigError("DATABASE_URL and REDIS_URL must be set")
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    redis = redis_from_url(settings.redis_url, socket_timeout=30.0)
    keys = Keys(settings.redis_namespace)
    scripts = Scripts(redis, keys)
    lock = ReconcileLock(redis, scripts, keys)
    # Every board's current period too, as the nodes' job does.
    catalog = BoardCatalog()
    await refresh_boards(catalog, pool)
    reconciler = Reconciler(
        pool=pool,
        redis=redis,
        keys=keys,
        scripts=scripts,
        lock=lock,
        progress=_Progress(),
        catalog=catalog,
    )
    try:
        async with lock.held() as got:
            if not got:
                print(
                    "leaderboard: another reconcile is running (a node or an operator holds "
                    f"{lock.key}); try again shortly",
                    file=sys.stderr,
                )
                return EXIT_BUSY
            report = await reconciler.run(full=full, dry_run=dry_run)
    except (RedisError, LockLost) as error:
        print(f"leaderboard: reconcile failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await redis.aclose()
        await pool.close()
    print(orjson.dumps(report.as_json()).decode() if as_json else report.summary())
    return 0


class _Progress:
    """Prints ``scanned N / M (p%)`` to stderr now and then during a long scan."""

    def __init__(self) -> None:
        self._last = 0.0

    def __call__(self, scanned: int, total: int) -> None:
        if total < PROGRESS_MIN_USERS:
            return
        now = time.monotonic()
        if now - self._last < PROGRESS_EVERY_SECONDS and scanned < total:
            return
        self._last = now
        print(
            f"  scanned {scanned} / {total} ({100 * scanned // max(total, 1)}%)",
            file=sys.stderr,
            flush=True,
        )
