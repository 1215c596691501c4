"""Configuration, parsed once from the environment into a frozen object.

Nothing else in the package reads ``os.environ``; every knob is documented in README.md.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from app.core.client_ip import Network, parse_networks

# A secret shorter than this is guessable offline from a single token (HS256 is a MAC).
MIN_SECRET_BYTES = 32
_WEAK_SECRETS = {"secret", "changeme", "change-me", "jwt-secret", "password", "dev", "test"}


class ConfigError(Exception):
    """The configuration cannot be used; the message is one line for the operator."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    jwt_secret: str = field(repr=False)
    read_database_url: str | None = None
    port: int = 3000
    host: str = "0.0.0.0"  # noqa: S104 - a server is meant to be reachable; set HOST to narrow it
    dev_mode: bool = False
    rate_limit_per_minute: int = 10
    rate_limit_window_seconds: int = 60
    login_attempts_per_minute: int = 10
    login_attempts_per_client_per_minute: int = 30
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    redis_namespace: str = "leaderboard"
    db_pool_min: int = 2
    db_pool_max: int = 20
    catalog_refresh_seconds: float = 30.0
    redis_timeout_seconds: float = 1.0
    redis_retry_seconds: float = 2.0
    max_body_bytes: int = 16 * 1024
    max_action_data_bytes: int = 4 * 1024
    ws_max_connections: int = 2000
    ws_max_per_user: int = 2
    ws_ping_interval_seconds: float = 30.0
    ws_pong_timeout_seconds: float = 10.0
    ws_auth_timeout_seconds: float = 5.0
    ws_send_timeout_seconds: float = 5.0
    ws_max_frame_bytes: int = 4096
    ws_connects_per_ip_per_minute: int = 60
    reconcile_interval_seconds: float = 60.0
    # Reverse proxies whose X-Forwarded-For is believed (see app/client_ip.py).
    trusted_proxies: tuple[Network, ...] = ()
    password_time_cost: int = 3
    password_memory_kib: int = 65536

    @property
    def jwt_secret_is_strong(self) -> bool:
        secret = self.jwt_secret
        return len(secret.encode()) >= MIN_SECRET_BYTES and secret.lower() not in _WEAK_SECRETS

    def check_for_serving(self) -> None:
        """Refuse configurations that are unsafe outside development mode."""
        if not self.dev_mode and not self.jwt_secret_is_strong:
            raise ConfigError(
                f"JWT_SECRET is missing or weak: set at least {MIN_SECRET_BYTES} random bytes "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`), "
                "or set LEADERBOARD_DEV=1 for local development"
            )

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        dev_mode = _flag(env.get("LEADERBOARD_DEV", ""))
        secret = env.get("JWT_SECRET", "")
        if not secret and dev_mode:
            # Development only: a per-process secret means tokens die with the process,
            # which is what a developer expects and never what production gets.
            secret = secrets.token_urlsafe(48)
        return cls(
            database_url=env.get("DATABASE_URL", ""),
            read_database_url=env.get("READ_DATABASE_URL") or None,
            redis_url=env.get("REDIS_URL", ""),
            jwt_secret=secret,
            dev_mode=dev_mode,
            port=_int(env, "PORT", 3000, 1, 65535),
            host=env.get("HOST", "0.0.0.0"),  # noqa: S104
            rate_limit_per_minute=_int(env, "RATE_LIMIT_PER_MINUTE", 10, 1, 100_000),
            login_attempts_per_minute=_int(env, "LOGIN_ATTEMPTS_PER_MINUTE", 10, 1, 10_000),
            login_attempts_per_client_per_minute=_int(
                env, "LOGIN_ATTEMPTS_PER_CLIENT_PER_MINUTE", 30, 1, 100_000
            ),
            access_token_ttl_seconds=_int(env, "ACCESS_TOKEN_TTL_SECONDS", 900, 2, 86_400),
            refresh_token_ttl_seconds=_int(
                env, "REFRESH_TOKEN_TTL_SECONDS", 30 * 86_400, 60, 365 * 86_400
            ),
            redis_namespace=env.get("REDIS_NAMESPACE", "leaderboard"),
            db_pool_min=_int(env, "DB_POOL_MIN", 2, 0, 1000),
            db_pool_max=_int(env, "DB_POOL_MAX", 20, 1, 1000),
            catalog_refresh_seconds=_float(env, "CATALOG_REFRESH_SECONDS", 30.0),
            redis_timeout_seconds=_float(env, "REDIS_TIMEOUT_SECONDS", 1.0),
            ws_max_connections=_int(env, "WS_MAX_CONNECTIONS", 2000, 1, 1_000_000),
            ws_max_per_user=_int(env, "WS_MAX_PER_USER", 2, 1, 100),
            ws_ping_interval_seconds=_float(env, "WS_PING_INTERVAL_SECONDS", 30.0),
            ws_pong_timeout_seconds=_float(env, "WS_PONG_TIMEOUT_SECONDS", 10.0),
            ws_auth_timeout_seconds=_float(env, "WS_AUTH_TIMEOUT_SECONDS", 5.0),
            ws_send_timeout_seconds=_float(env, "WS_SEND_TIMEOUT_SECONDS", 5.0),
            ws_connects_per_ip_per_minute=_int(env, "WS_CONNECTS_PER_IP_PER_MINUTE", 60, 1, 10**6),
            ws_max_frame_bytes=_int(env, "WS_MAX_FRAME_BYTES", 4096, 128, 1 << 20),
            reconcile_interval_seconds=_float(env, "RECONCILE_INTERVAL_SECONDS", 60.0),
            trusted_proxies=_networks(env, "TRUSTED_PROXIES"),
            password_time_cost=_int(env, "PASSWORD_TIME_COST", 3, 1, 10),
            password_memory_kib=_int(env, "PASSWORD_MEMORY_KIB", 65536, 1024, 1 << 21),
        )


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _networks(env: Mapping[str, str], name: str) -> tuple[Network, ...]:
    try:
        return parse_networks(env.get(name, ""))
    except ValueError as error:
        raise ConfigError(f"{name}: {error}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value < 86_400:
        raise ConfigError(f"{name} must be between 0 and 86400 seconds, got {value}")
    return value
