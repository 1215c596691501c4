"""Everything a request needs, created when serving starts and closed when it stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.core.board import Board
from app.core.catalog import Catalog
from app.core.passwords import Passwords
from app.core.settings import Settings
from app.live.node import LiveNode
from app.obs.metrics import Metrics
from app.redis.broker import Subscription
from app.redis.health import RedisHealth
from app.redis.keys import Keys
from app.redis.live_registry import Registry
from app.redis.ranking_cache import LeaderboardCache
from app.redis.rate_gate import RateLimiter
from app.redis.scripts import Scripts
from app.repair.job import ReconcileJob, reconcile_job

log = logging.getLogger(__name__)

RECONCILE_START_WAIT_SECONDS = 10.0


@dataclass
class Services:
    settings: Settings
    pool: asyncpg.Pool
    read_pool: asyncpg.Pool
    redis: Redis
    keys: Keys
    scripts: Scripts
    health: RedisHealth
    board: Board
    catalog: Catalog
    limiter: RateLimiter
    leaderboard: LeaderboardCache
    passwords: Passwords
    subscription: Subscription
    live: LiveNode
    metrics: Metrics
    reconcile: ReconcileJob
    _subscriber_redis: Redis
    _tasks: list[asyncio.Task[None]]

    @classmethod
    async def start(cls, settings: Settings) -> Services:
        pool = await create_pool(settings.database_url, settings)
        read_pool = pool
        if settings.read_database_url:
            read_pool = await create_pool(settings.read_database_url, settings)
        redis = Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout_seconds,
            socket_connect_timeout=settings.redis_timeout_seconds,
        )
        # The subscriber waits for messages indefinitely, so it must not share the short
        # timeout; its own PINGs detect a dead connection instead.
        subscriber_redis = Redis.from_url(
            settings.redis_url, socket_connect_timeout=settings.redis_timeout_seconds
        )
        keys = Keys(settings.redis_namespace)
        scripts = Scripts(redis, keys)
        try:
            await scripts.load()
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            # Serving without Redis is allowed (fallbacks); the scripts load on first use.
            log.warning("redis unreachable at start-up (%s); continuing with fallbacks", error)
        health = RedisHealth(settings.redis_retry_seconds)
        board = Board()
        catalog = Catalog()
        await catalog.refresh(pool)
        leaderboard = LeaderboardCache(
            redis=redis,
            scripts=scripts,
            keys=keys,
            read_pool=read_pool,
            board=board,
            health=health,
        )
        registry = Registry(redis, scripts, keys, LiveNode.new_node_id(), settings.ws_max_per_user)
        live = LiveNode(settings, board, registry, leaderboard.snapshot)
        metrics = Metrics()
        pools = {"primary": pool} | ({"replica": read_pool} if read_pool is not pool else {})
        metrics.observe_pools(pools)
        metrics.observe_redis(health)
        metrics.observe_live(lambda: live.hub.count)
        metrics.observe_board(board, lambda: live.hub.live_count)
        reconcile = reconcile_job(
            pool=pool,
            redis=redis,
            keys=keys,
            scripts=scripts,
            metrics=metrics,
            interval=settings.reconcile_interval_seconds,
        )
        # A cold ranking, or Redis back after an outage: repair now, in the background.
        leaderboard.on_cold(reconcile.kick)
        health.on_recovery(lambda _outage_began: reconcile.kick())
        services = cls(
            settings=settings,
            pool=pool,
            read_pool=read_pool,
            redis=redis,
            keys=keys,
            scripts=scripts,
            health=health,
            board=board,
            catalog=catalog,
            limiter=RateLimiter(scripts, health, settings.rate_limit_window_seconds),
            leaderboard=leaderboard,
            passwords=Passwords(settings.password_time_cost, settings.password_memory_kib),
            subscription=Subscription(
                subscriber_redis, keys, board, health, {registry.control_channel: live.on_control}
            ),
            live=live,
            metrics=metrics,
            reconcile=reconcile,
            _subscriber_redis=subscriber_redis,
            _tasks=[],
        )
        services.subscription.start()
        live.start()
        services.reconcile.start()
        # Its first pass rebuilds a cold ranking; serving after it spares the first requests
        # the fallbacks. Bounded: a large rebuild finishes in the background.
        await services.reconcile.first_attempt(at_most=RECONCILE_START_WAIT_SECONDS)
        services._tasks.append(asyncio.create_task(services._refresh_catalog_forever()))
        return services

    async def _refresh_catalog_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.catalog_refresh_seconds)
            try:
                await self.catalog.refresh(self.pool)
            except (asyncpg.PostgresError, OSError) as error:
                log.warning("could not refresh the action catalog: %s", error)

    async def close(self) -> None:
        # First, so the reconcile lock is released while Redis is still reachable.
        await self.reconcile.stop()
        await self.live.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.subscription.stop()
        for client in (self.redis, self._subscriber_redis):
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()
        if self.read_pool is not self.pool:
            await self.read_pool.close()
        await self.pool.close()


async def create_pool(url: str, settings: Settings) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        # Fail a request promptly while the database is unreachable instead of hanging it.
        timeout=5.0,
        command_timeout=10.0,
        reset=keep_session,
    )


async def keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's reset query (advisory unlock, CLOSE ALL, UNLISTEN, RESET
    ALL): one more round trip per pooled call, ~7 % of a worker's CPU on the write path.
    Nothing here leaves session state behind: no LISTEN, no session SET or advisory lock,
    cursors only inside transactions. The pool still rolls back an open transaction."""
