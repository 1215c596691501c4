"""Everything a request needs, created when serving starts and closed when it stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.core.board import Board, Boards
from app.core.board_reads import BoardCatalog, database_top
from app.core.catalog import Catalog
from app.core.passwords import Passwords
from app.core.periodic import Periodic
from app.core.sessions import SessionGuard, Sessions
from app.core.settings import Settings
from app.db.accounts import PgAccounts
from app.db.actions import refresh_catalog
from app.db.api_keys import PgApiKeys
from app.db.awards import PgAwards
from app.db.boards import PgBoards, refresh_boards
from app.db.completions import PgCompletions
from app.db.group_commit import GroupCommitStore
from app.db.issuers import PgIssuers
from app.db.pool import DbTimeouts, create_pool
from app.db.pool import keep_session as keep_session  # perf/ imports it from here
from app.db.profiles import PgProfiles
from app.db.sessions import PgSessions, RevocationListener
from app.db.standings import PgStandings
from app.live.node import LiveNode
from app.obs.metrics import Metrics
from app.redis.board_cache import BoardCache
from app.redis.broker import Subscription
from app.redis.client import redis_from_url
from app.redis.group_apply import GroupApply
from app.redis.health import RedisHealth
from app.redis.keys import Keys
from app.redis.live_nodes import REPORT_SECONDS as LIVE_REPORT_SECONDS
from app.redis.live_nodes import LiveNodes
from app.redis.live_registry import Registry
from app.redis.ranking_cache import LeaderboardCache
from app.redis.rate_gate import RateLimiter
from app.redis.scripts import Scripts
from app.redis.sessions_bus import RedisRevocationBus
from app.repair.job import ReconcileJob, reconcile_job
from app.repair.rollover import Rollover

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
    board: Board  # the all-time board (the fast path serves it)
    boards: Boards
    catalog: Catalog
    board_catalog: BoardCatalog
    boards_db: PgBoards
    accounts: PgAccounts
    completions: PgCompletions | GroupCommitStore
    profiles: PgProfiles
    limiter: RateLimiter
    leaderboard: LeaderboardCache
    board_cache: BoardCache
    rollover: Rollover
    passwords: Passwords
    subscription: Subscription
    live: LiveNode
    metrics: Metrics
    reconcile: ReconcileJob
    _subscriber_redis: Redis
    _gate_redis: Redis
    _periodic: Periodic
    sessions: Sessions  # the account guard and ending sessions (app/core/sessions.py)
    issuers: PgIssuers  # receipt issuers, looked up per receipt (a revocation counts at once)
    live_nodes: LiveNodes  # each node's live connection count (the admin analytics)
    api_keys: PgApiKeys  # game servers' keys (POST /api/server/awards)
    awards: PgAwards
    # What the write path applies committed scores through (app/redis/group_apply.py).
    score_applies: LeaderboardCache | GroupApply
    _revocations: RevocationListener

    @classmethod
    async def start(cls, settings: Settings) -> Services:
        pool = await create_pool(settings.database_url, settings)
        read_pool = pool
        if settings.read_database_url:
            read_pool = await create_pool(settings.read_database_url, settings)
        redis = redis_client(
            settings.redis_url,
            reply_timeout=settings.redis_timeout_seconds,
            connect_timeout=settings.redis_timeout_seconds,
        )
        # The rate gate's own client: it waits longer, to connect as for a reply (a slow verdict
        # is still the exact, cluster-wide one; app/redis/rate_gate.py says when it gives up).
        gate_wait = max(settings.rate_limit_redis_timeout_seconds, settings.redis_timeout_seconds)
        gate_redis = redis_client(
            settings.redis_url, reply_timeout=gate_wait, connect_timeout=gate_wait
        )
        # The subscriber waits for messages indefinitely, so it must not share the short
        # timeout; its own PINGs detect a dead connection instead.
        subscriber_redis = redis_from_url(
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
        boards = Boards(board)
        catalog = Catalog()
        await refresh_catalog(catalog, pool)
        board_catalog = BoardCatalog()
        await refresh_boards(board_catalog, pool)
        leaderboard = LeaderboardCache(
            redis=redis,
            scripts=scripts,
            keys=keys,
            standings=PgStandings(read_pool),
            board=board,
            health=health,
            boards=boards,
        )
        registry = Registry(redis, scripts, keys, LiveNode.new_node_id(), settings.ws_max_per_user)
        boards_db = PgBoards(read_pool)
        board_cache = BoardCache(
            redis=redis,
            scripts=scripts,
            keys=keys,
            boards=boards,
            catalog=board_catalog,
            health=health,
            all_time=leaderboard.snapshot,
            database_top=lambda board_id, period: database_top(boards_db, board_id, period),
        )
        sessions_bus = RedisRevocationBus(redis, keys)
        sessions = Sessions(
            SessionGuard(settings.jwt_key, settings.access_token_ttl_seconds),
            PgSessions(pool),
            sessions_bus,
        )
        live = LiveNode(
            settings,
            boards,
            registry,
            board_cache.snapshot,
            board_cache.is_live,
            sessions.guard,
        )
        rollover = Rollover(
            redis=redis,
            scripts=scripts,
            keys=keys,
            pool=pool,
            catalog=board_catalog,
            boards=boards,
            node_id=registry.node_id,
        )
        leaderboard.on_board_cold(rollover.kick)
        metrics = Metrics()
        pools = {"primary": pool} | ({"replica": read_pool} if read_pool is not pool else {})
        metrics.observe_pools(pools)
        metrics.observe_redis(health)
        metrics.observe_live(lambda: live.hub.count)
        live.hub.after_broadcast = metrics.observe_broadcast
        metrics.observe_board(board, lambda: live.hub.live_count)
        reconcile = reconcile_job(
            pool=pool,
            redis=redis,
            keys=keys,
            scripts=scripts,
            metrics=metrics,
            interval=settings.reconcile_interval_seconds,
            catalog=board_catalog,
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
            boards=boards,
            catalog=catalog,
            board_catalog=board_catalog,
            boards_db=boards_db,
            accounts=PgAccounts(pool),
            completions=completion_store(pool, settings),
            profiles=PgProfiles(pool),
            limiter=RateLimiter(
                Scripts(gate_redis, keys), keys, health, settings.rate_limit_window_seconds
            ),
            leaderboard=leaderboard,
            board_cache=board_cache,
            rollover=rollover,
            passwords=Passwords(settings.password_time_cost, settings.password_memory_kib),
            subscription=Subscription(
                subscriber_redis,
                keys,
                boards,
                health,
                {
                    registry.control_channel: live.on_control,
                    sessions_bus.channel: sessions.guard.learn_message,
                },
            ),
            live=live,
            metrics=metrics,
            reconcile=reconcile,
            _subscriber_redis=subscriber_redis,
            _gate_redis=gate_redis,
            _periodic=Periodic(),
            sessions=sessions,
            issuers=PgIssuers(pool),
            live_nodes=LiveNodes(redis, keys, registry.node_id),
            api_keys=PgApiKeys(pool),
            awards=PgAwards(pool),
            score_applies=GroupApply(leaderboard) if settings.group_apply else leaderboard,
            _revocations=RevocationListener(
                settings.database_url,
                sessions.guard.learn_message,
                sessions.poll,
                settings.db_connect_timeout_seconds,
            ),
        )
        await _first_sessions_poll(sessions)
        services._revocations.start()
        # Serve once it listens (a ban or deletion in SQL is refused at once), but do not
        # wait long: without it the poll still bounds how late a node learns.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settings.db_connect_timeout_seconds):
                await services._revocations.listening.wait()
        services.subscription.start()
        live.start()
        services.reconcile.start()
        services.rollover.start()
        # Its first pass rebuilds a cold ranking; serving after it spares the first requests
        # the fallbacks. Bounded: a large rebuild finishes in the background.
        await services.reconcile.first_attempt(at_most=RECONCILE_START_WAIT_SECONDS)
        services._periodic.every(
            settings.catalog_refresh_seconds,
            lambda: refresh_catalog(catalog, pool),
            name="catalog-refresh",
        )
        services._periodic.every(
            settings.catalog_refresh_seconds,
            lambda: refresh_boards(board_catalog, pool),
            name="boards-refresh",
        )
        services._periodic.every(
            settings.session_poll_seconds, _quiet_poll(sessions), name="sessions-poll"
        )
        services._periodic.every(
            LIVE_REPORT_SECONDS,
            lambda: services.live_nodes.report(live.hub.count),
            name="live-nodes-report",
        )
        return services

    async def close(self) -> None:
        # First, so the reconcile lock is released while Redis is still reachable.
        await self.reconcile.stop()
        await self.rollover.stop()
        await self.live.close()
        await self._periodic.stop()
        await self.live_nodes.forget()
        await self._revocations.stop()
        await self.subscription.stop()
        for client in (self.redis, self._subscriber_redis, self._gate_redis):
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()
        if self.read_pool is not self.pool:
            await self.read_pool.close()
        await self.pool.close()


async def _first_sessions_poll(sessions: Sessions) -> None:
    """Know the ended sessions before serving (a failure is retried by the periodic poll)."""
    try:
        await sessions.poll()
    except Exception as error:
        log.warning("could not read ended sessions at start-up (%r); retrying", error)


def _quiet_poll(sessions: Sessions) -> Callable[[], Awaitable[None]]:
    """The periodic poll of ended sessions: a database away is one warning per outage (the
    node keeps what it knows and the listener and Redis still tell it), not an error a second."""
    failing = False

    async def poll() -> None:
        nonlocal failing
        try:
            await sessions.poll()
        except Exception as error:
            if not failing:
                log.warning("cannot read ended sessions (%r); retrying every poll", error)
            failing = True
        else:
            failing = False

    return poll


# Connections per client per process. redis-py 8 caps a pool at 100 by default and fails a call
# beyond it; a loaded node has more requests in flight than that, and every such failure is a
# fallback (the rate gate refuses the request).
REDIS_MAX_CONNECTIONS = 1000


def redis_client(url: str, *, reply_timeout: float, connect_timeout: float) -> Redis:
    """A Redis client that gives up on a slow reply after ``reply_timeout`` and tries once more
    only when a connection broke (a stale pooled connection after a Redis restart).

    redis-py would otherwise retry a timed-out command up to ten times: a slow Redis then
    holds a call for many timeouts, and a retry after the reply came late runs the script a
    second time (a rate-limit hit counted twice)."""
    return redis_from_url(
        url,
        socket_timeout=reply_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        max_connections=REDIS_MAX_CONNECTIONS,
    )


def completion_store(pool: asyncpg.Pool, settings: Settings) -> PgCompletions | GroupCommitStore:
    """Completions committed one statement each, or grouped (app/db/group_commit.py)."""
    timeouts = DbTimeouts.from_settings(settings)
    single = PgCompletions(pool, timeouts)
    return GroupCommitStore(single, pool, timeouts) if settings.group_commit else single
