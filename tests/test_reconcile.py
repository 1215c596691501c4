"""The reconciler: every kind of drift is repaired and reported, a full rebuild under a stream
of updates loses none of them, and two nodes never reconcile at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import orjson
import pytest
from redis.asyncio import Redis

from app.core.board import snapshot_from_message
from app.core.ranking import ranking_member
from app.core.settings import Settings
from app.db.completions import commit_completion
from app.obs.metrics import Metrics
from app.redis.keys import Keys
from app.redis.lock import LockLost, ReconcileLock
from app.redis.scripts import Scripts
from app.repair.job import ReconcileJob
from app.repair.reconcile import Reconciler
from tests.conftest import BackingServers, services_of
from tests.support.cli import run_cli


@pytest.fixture
def operator_env(settings: Settings) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "REDIS_NAMESPACE": settings.redis_namespace,
    }


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    yield created
    await created.close()


def node(pool: asyncpg.Pool, redis: Redis, namespace: str, **options: object) -> Reconciler:
    """A reconciler as one node holds it (its own lock object)."""
    keys = Keys(namespace)
    scripts = Scripts(redis, keys)
    lock = ReconcileLock(redis, scripts, keys, **options)  # type: ignore[arg-type]
    return Reconciler(pool=pool, redis=redis, keys=keys, scripts=scripts, lock=lock)


async def run_pass(reconciler: Reconciler, **kwargs: bool):  # type: ignore[no-untyped-def]
    lock = reconciler._lock
    async with lock.held() as got:
        assert got
        return await reconciler.run(**kwargs)


async def expected_cache(db: asyncpg.Connection) -> dict[str, object]:
    rows = await db.fetch(
        "SELECT id::text AS id, username, score, reached_at FROM users WHERE score > 0"
    )
    return {
        "ranking": {ranking_member(r["id"], r["reached_at"]): float(r["score"]) for r in rows},
        "members": {r["id"]: ranking_member(r["id"], r["reached_at"]) for r in rows},
        "names": {r["id"]: r["username"] for r in rows},
    }


async def actual_cache(redis: Redis, keys: Keys) -> dict[str, object]:
    ranking = await redis.zrange(keys.ranking, 0, -1, withscores=True)
    members = await redis.hgetall(keys.members)
    names = await redis.hgetall(keys.names)
    return {
        "ranking": {m.decode(): s for m, s in ranking},
        "members": {k.decode(): v.decode() for k, v in members.items()},
        # Names of users without points may linger harmlessly; compare the ranked ones.
        "names": {k.decode(): v.decode() for k, v in names.items() if k in members},
    }


async def published(redis: Redis, keys: Keys) -> dict[str, object]:
    message = await redis.get(keys.message)
    assert message is not None
    parsed: dict[str, object] = orjson.loads(message)
    return parsed


async def complete(client, player, action_id: str) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/action/complete", json={"actionId": action_id}, headers=player.headers
    )
    assert response.status_code == 200, await response.get_data()


async def test_every_kind_of_drift_is_repaired_and_reported_by_the_command(
    app, client, make_player, db, redis: Redis, namespace: str, operator_env
) -> None:
    keys = Keys(namespace)
    alice, bob, carol, dave = [await make_player(n) for n in ("alice", "bob", "carol", "dave")]
    for player, action in ((alice, "boss"), (bob, "level_a"), (carol, "quiz_a"), (dave, "quiz_b")):
        await complete(client, player, action)
    epoch_before = (await published(redis, keys))["epoch"]

    # A tampered score, a missing member, an extra member, and a lost apply: dave's commit
    # of 100 points reached PostgreSQL but the process died before applying it to Redis.
    bob_member = await redis.hget(keys.members, bob.user_id)
    await redis.zadd(keys.ranking, {bob_member: 999})
    carol_member = await redis.hget(keys.members, carol.user_id)
    await redis.zrem(keys.ranking, carol_member)
    await redis.hdel(keys.members, carol.user_id)
    await redis.zadd(keys.ranking, {"0000000000000001:deleted-user": 500})
    assert await commit_completion(db, dave.user_id, "boss") is not None

    dry = run_cli("reconcile", "--full", "--dry-run", "--json", env=operator_env)
    assert dry.returncode == 0, dry.stderr
    found = orjson.loads(dry.stdout)
    assert (found["drift"]["missing"], found["drift"]["wrong"], found["drift"]["extra"]) == (
        1,
        2,
        1,
    )
    assert found["fixed"] == 0 and found["scanned"] == 4
    assert await actual_cache(redis, keys) != await expected_cache(db)  # a dry run changes nothing

    fixed = run_cli("reconcile", env=operator_env)
    assert fixed.returncode == 0, fixed.stderr
    assert "reconcile incremental" in fixed.stdout
    assert "missing   1" in fixed.stdout and "wrong     2" in fixed.stdout
    assert "published a new top 10" in fixed.stdout
    top = (await published(redis, keys))["data"]["users"]  # type: ignore[index]
    # Only a full pass can tell a stray member from a user: it is still there.
    assert [u["userId"] for u in top] == [
        "deleted-user",
        dave.user_id,
        alice.user_id,
        bob.user_id,
        carol.user_id,
    ]

    full = run_cli("reconcile", "--full", env=operator_env)
    assert full.returncode == 0, full.stderr
    assert "extra     1" in full.stdout and "fixed     1" in full.stdout
    assert await actual_cache(redis, keys) == await expected_cache(db)
    message = await published(redis, keys)
    assert message["epoch"] != epoch_before  # a rebuild starts a new epoch
    assert [(u["username"], u["score"]) for u in message["data"]["users"]] == [  # type: ignore[index]
        ("dave", 110),
        ("alice", 100),
        ("bob", 50),
        ("carol", 10),
    ]
    # The node's board follows the publish, so readers see the repaired board.
    body = await (await client.get("/api/leaderboard")).get_json()
    assert [u["username"] for u in body["users"]] == ["dave", "alice", "bob", "carol"]


async def test_a_flushed_redis_is_rebuilt_and_published_under_a_new_epoch(
    app, client, make_player, db, redis: Redis, namespace: str, operator_env
) -> None:
    keys = Keys(namespace)
    players = [await make_player(f"player{i}") for i in range(3)]
    for player, action in zip(players, ("boss", "level_a", "quiz_a"), strict=True):
        await complete(client, player, action)
    epoch_before = (await published(redis, keys))["epoch"]
    # Redis lost this deployment's data (the test's namespace only: the server is shared).
    await redis.delete(*[k async for k in redis.scan_iter(match=f"*{namespace}*")])

    result = run_cli("reconcile", env=operator_env)
    assert result.returncode == 0, result.stderr
    assert "reconcile full" in result.stdout and "cold" in result.stdout
    assert "missing   3" in result.stdout
    assert await actual_cache(redis, keys) == await expected_cache(db)
    message = await published(redis, keys)
    assert message["epoch"] != epoch_before
    assert [u["score"] for u in message["data"]["users"]] == [100, 50, 10]  # type: ignore[index]


async def test_incremental_pass_reads_from_the_watermark_and_skips_nothing_committed_since(
    app, client, make_player, db, pool, redis: Redis, namespace: str
) -> None:
    keys = Keys(namespace)
    early, late = await make_player("early"), await make_player("late")
    await complete(client, early, "quiz_a")
    first = await run_pass(node(pool, redis, namespace))
    assert first.drift.total == 0 and first.scanned >= 1

    # Lost apply after the first pass: the next pass reads from its watermark and finds it.
    assert await commit_completion(db, late.user_id, "boss") is not None
    second = await run_pass(node(pool, redis, namespace))
    assert second.since is not None
    assert (second.drift.missing, second.drift.wrong) == (1, 0)
    assert second.published
    assert await actual_cache(redis, keys) == await expected_cache(db)


async def test_a_full_rebuild_under_a_stream_of_updates_ends_equal_to_the_database(
    app, client, make_player, db, pool, redis: Redis, namespace: str
) -> None:
    keys = Keys(namespace)
    await db.execute(
        "INSERT INTO users (username, score, reached_at) "
        "SELECT 'bulk' || g, 1 + g % 97, now() - g * interval '1 second' "
        "FROM generate_series(1, 600) g"
    )
    await run_pass(node(pool, redis, namespace), full=True)  # warm
    players = [await make_player(f"stream{i}") for i in range(30)]
    actions = ["quiz_a", "quiz_b", "quiz_c", "level_a", "level_b", "boss"]
    during = 0
    rebuilding = asyncio.Event()
    done = asyncio.Event()

    async def stream() -> None:
        nonlocal during
        for action in actions:
            for player in players:
                if done.is_set():
                    return
                await complete(client, player, action)
                during += rebuilding.is_set()
                await asyncio.sleep(0)

    reconciler = node(pool, redis, namespace)
    reconciler._batch_size = 7  # many round trips, so the stream interleaves with the scan

    async def rebuild():  # type: ignore[no-untyped-def]
        rebuilding.set()
        try:
            return await run_pass(reconciler, full=True)
        finally:
            done.set()

    streaming = asyncio.create_task(stream())
    report = await rebuild()
    await streaming
    assert during > 0, "no update landed while the rebuild ran"
    assert report.scanned >= 600
    assert await actual_cache(redis, keys) == await expected_cache(db)
    # And what readers see is the database's top 10.
    top = await db.fetch(
        "SELECT id::text FROM users WHERE score > 0 "
        "ORDER BY score DESC, reached_at ASC, id DESC LIMIT 10"
    )
    users = (await published(redis, keys))["data"]["users"]  # type: ignore[index]
    assert [u["userId"] for u in users] == [r["id"] for r in top]
    app_board = services_of(app).board.current
    assert app_board is not None


async def test_two_nodes_never_reconcile_at_once(
    app, pool, redis: Redis, namespace: str, operator_env
) -> None:
    metrics = [Metrics(), Metrics()]
    nodes = [node(pool, redis, namespace) for _ in range(2)]
    jobs = [ReconcileJob(n, n._lock, m, 60) for n, m in zip(nodes, metrics, strict=True)]
    results = await asyncio.gather(*(job.run_once() for job in jobs))
    assert sorted(r is None for r in results) == [False, True]

    # While one node holds the lock, the operator's command refuses to run beside it.
    async with nodes[0]._lock.held() as got:
        assert got
        busy = await asyncio.to_thread(run_cli, "reconcile", env=operator_env)
        assert busy.returncode == 3 and "another reconcile is running" in busy.stderr
        assert await jobs[1].run_once() is None
    assert await jobs[1].run_once() is not None  # released at the end of the block


async def test_a_dead_holder_is_replaced_and_cannot_swap_after_losing_the_lock(
    app, pool, redis: Redis, namespace: str
) -> None:
    keys = Keys(namespace)
    scripts = Scripts(redis, keys)
    dead = ReconcileLock(redis, scripts, keys, ttl_seconds=0.3)
    assert await dead.acquire()  # then it "dies": nothing renews the lock
    successor = node(pool, redis, namespace)
    deadline = asyncio.get_running_loop().time() + 5
    while not await successor._lock.acquire():
        assert asyncio.get_running_loop().time() < deadline, "the expired lock was not replaced"
        await asyncio.sleep(0.05)

    # The old holder's token no longer matches: its rebuild stops before touching the ranking.
    ranking_before = await redis.zrange(keys.ranking, 0, -1, withscores=True)
    stale = Reconciler(pool=pool, redis=redis, keys=keys, scripts=scripts, lock=dead)
    with pytest.raises(LockLost):
        await stale.run(full=True)
    assert await redis.zrange(keys.ranking, 0, -1, withscores=True) == ranking_before
    assert not await dead.extend()
    await dead.release()  # must not delete the successor's lock
    assert await redis.get(keys.reconcile_lock) == successor._lock.token.encode()  # type: ignore[union-attr]
    await successor._lock.release()


async def test_the_periodic_job_repairs_drift_by_itself(
    backing_servers: BackingServers, settings, catalog_loaded, make_player, db, redis, namespace
) -> None:
    from app.http.app import create_app

    keys = Keys(namespace)
    quart_app = create_app(settings.with_overrides(reconcile_interval_seconds=0.2))
    async with quart_app.test_app() as test_app:
        client = test_app.test_client()
        player = await make_player("solo")
        await complete(client, player, "boss")
        await redis.zadd(keys.ranking, {await redis.hget(keys.members, player.user_id): 1})
        metrics = services_of(test_app).metrics
        counted = 'leaderboard_reconcile_drift_total{kind="wrong"} 1.0'
        deadline = asyncio.get_running_loop().time() + 10
        # The pass records its drift once it has released the lock, just after the repair.
        while (
            await actual_cache(redis, keys) != await expected_cache(db)
            or counted not in metrics.exposition().decode()
        ):
            assert asyncio.get_running_loop().time() < deadline, "the job did not repair it"
            await asyncio.sleep(0.05)


async def test_the_command_shows_progress_on_a_large_table_and_repairs_it(
    db, redis: Redis, namespace: str, operator_env
) -> None:
    keys = Keys(namespace)
    await db.execute(
        "INSERT INTO users (username, score, reached_at) "
        "SELECT 'many' || g, 1 + g % 1000, now() - g * interval '1 millisecond' "
        "FROM generate_series(1, 25000) g"
    )
    result = await asyncio.to_thread(run_cli, "reconcile", "--full", env=operator_env)
    assert result.returncode == 0, result.stderr
    assert "scanned 25000 / 25000 (100%)" in result.stderr
    assert "missing   25000" in result.stdout
    assert await redis.zcard(keys.ranking) == 25000
    assert await actual_cache(redis, keys) == await expected_cache(db)


async def test_a_rebuild_in_batches_publishes_once_and_only_the_complete_board(
    app, db, pool, redis: Redis, namespace: str
) -> None:
    keys = Keys(namespace)
    instant = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    await db.executemany(
        "INSERT INTO users (username, score, reached_at) VALUES ($1, $2, $3)",
        [(f"batch_{i:02d}", 10 + i, instant) for i in range(14)],
    )
    await redis.delete(*keys.leaderboard_keys())
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.updates_channel)
    await pubsub.get_message(timeout=1)

    reconciler = node(pool, redis, namespace)
    reconciler._batch_size = 3
    report = await run_pass(reconciler)

    assert (report.mode, report.scanned, report.drift.missing) == ("full", 14, 14)
    messages = []
    while (message := await pubsub.get_message(timeout=0.3)) is not None:
        messages.append(message["data"])
    await pubsub.aclose()
    assert len(messages) == 1
    users = snapshot_from_message(messages[0]).users
    assert [u["username"] for u in users] == [f"batch_{i:02d}" for i in range(13, 3, -1)]


async def test_a_rebuild_frees_the_replaced_ranking_without_blocking_redis(
    app, db, pool, redis: Redis, namespace: str
) -> None:
    # Freeing a large sorted set in the swap would block Redis for O(N): the old live keys
    # are UNLINKed (freed by a background thread), never DELeted or renamed over. Redis
    # counts what its background thread freed (INFO memory lazyfreed_objects, Redis >= 6.2).
    keys = Keys(namespace)
    big = 2000  # well above the size Redis frees in place (64 elements) and listpack limits
    await db.execute(
        "INSERT INTO users (username, score, reached_at) "
        "SELECT 'big' || g, g, now() FROM generate_series(1, $1) g",
        big,
    )
    await run_pass(node(pool, redis, namespace), full=True)
    assert await redis.zcard(keys.ranking) == big
    stats = await redis.info("memory")
    if "lazyfreed_objects" not in stats:
        pytest.skip("this server does not report lazyfreed_objects")
    freed_before = int(stats["lazyfreed_objects"])

    await run_pass(node(pool, redis, namespace), full=True)

    assert int((await redis.info("memory"))["lazyfreed_objects"]) > freed_before
    assert await redis.zcard(keys.ranking) == big
    assert await redis.ttl(keys.ranking) == -1  # the staging expiry did not carry over
