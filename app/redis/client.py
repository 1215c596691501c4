"""Redis clients from ``REDIS_URL``: one server, or the master of a Sentinel group.

redis-py's ``from_url`` knows ``redis://``, ``rediss://`` and ``unix://`` only. A Sentinel group
is named the way other clients (kombu, lettuce, prefect-redis) name it::

    redis+sentinel://[user:password@]host[:port][,host2[:port2]...]/service_name[/db]
        [?sentinel_username=...&sentinel_password=...]

The hosts are the Sentinel daemons (default port 26379), not Redis servers; ``user:password``
authenticates to the Redis master, ``sentinel_*`` (optional) to the Sentinels themselves. The
client asks a Sentinel for the current master before each new connection, and a connection to a
demoted master (``READONLY``) is dropped, so a failover needs no restart: calls fail (and the
callers' fallbacks take over) until Sentinel has promoted a replica, then reach it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379
_SENTINEL_OPTIONS = frozenset({"sentinel_username", "sentinel_password"})
_MAX_SENTINELS = 16  # a typo'd URL should fail here, not open hundreds of sockets


@dataclass(frozen=True)
class SentinelUrl:
    """A parsed ``redis+sentinel://`` URL; credentials stay out of its repr."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)


def is_sentinel_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() == SENTINEL_SCHEME


def parse_sentinel_url(url: str) -> SentinelUrl:
    """Parse a Sentinel URL; ValueError (never echoing the password) when it is malformed."""
    parts = urlsplit(url)
    if parts.scheme.lower() != SENTINEL_SCHEME:
        raise ValueError(f"not a {SENTINEL_SCHEME}:// URL")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username = password = None
    if userinfo:
        user, has_password, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    sentinels = tuple(_host_port(item) for item in hostlist.split(",") if item.strip())
    if not sentinels:
        raise ValueError("a Sentinel URL names at least one Sentinel host")
    if len(sentinels) > _MAX_SENTINELS:
        raise ValueError(f"at most {_MAX_SENTINELS} Sentinel hosts")
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise ValueError("a Sentinel URL's path is /service_name or /service_name/db")
    db = 0
    if len(path) == 2:
        if not path[1].isdigit():
            raise ValueError("the database number in a Sentinel URL must be an integer")
        db = int(path[1])
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    unknown = set(query) - _SENTINEL_OPTIONS
    if unknown:
        raise ValueError(f"unknown Sentinel URL option(s): {', '.join(sorted(unknown))}")
    option = {name: values[-1] for name, values in query.items()}
    return SentinelUrl(
        sentinels=sentinels,
        service_name=path[0],
        db=db,
        username=username,
        password=password,
        sentinel_username=option.get("sentinel_username") or None,
        sentinel_password=option.get("sentinel_password") or None,
    )


def _host_port(item: str) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # [IPv6]:port
        host, _, rest = item[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise ValueError("a Sentinel host is empty")
    if not port_text:
        return host, DEFAULT_SENTINEL_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError("a Sentinel port must be a number from 1 to 65535")
    return host, int(port_text)


class SentinelMaster(Redis):
    """The master of a Sentinel group. Closing it closes the Sentinel connections as well
    (redis-py leaves those open: the Sentinel object may serve several clients; here it
    serves exactly one)."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        pool = self.connection_pool
        if isinstance(pool, SentinelConnectionPool):
            await pool.sentinel_manager.aclose()


def redis_from_url(
    url: str,
    *,
    socket_timeout: float | None = None,
    socket_connect_timeout: float | None = None,
    **options: Any,
) -> Redis:
    """A client for ``url``: ``Redis.from_url`` for a single server, else the master of the
    Sentinel group the URL names. ``socket_timeout=None`` waits indefinitely (a subscriber);
    questions to the Sentinels still give up after ``socket_connect_timeout``. ``options``
    (``retry``, ``max_connections``, ...) go to the client's connection pool either way."""
    if not is_sentinel_url(url):
        return Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            **options,
        )
    parsed = parse_sentinel_url(url)
    # Asking a Sentinel is a short request/response even for a subscriber's client: never
    # wait on one forever, or a dead Sentinel would stall reconnection to the new master.
    ask_timeout = socket_connect_timeout or socket_timeout or 1.0
    sentinel = Sentinel(  # type: ignore[no-untyped-call] # redis-py leaves it untyped
        list(parsed.sentinels),
        sentinel_kwargs={
            "socket_timeout": ask_timeout,
            "socket_connect_timeout": ask_timeout,
            "username": parsed.sentinel_username,
            "password": parsed.sentinel_password,
            # No retries per Sentinel: the client already asks the next one, and redis-py's
            # default backoff (1 s, 2 s, ...) would hold every request for seconds while a
            # Sentinel is down, where a plain client fails at once and the fallbacks answer.
            "retry": Retry(NoBackoff(), 0),
        },
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_connect_timeout,
        username=parsed.username,
        password=parsed.password,
        db=parsed.db,
        **options,
    )
    master: Redis = sentinel.master_for(parsed.service_name, redis_class=SentinelMaster)
    return master
