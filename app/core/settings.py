"""Configuration, parsed once from the environment into a frozen, typed object.

pydantic-settings reads and checks every knob (the field name in upper case is the variable:
``rate_limit_per_minute`` ← ``RATE_LIMIT_PER_MINUTE``); nothing else in the package reads
``os.environ``. The parsed object is handed on (to workers too); it is never parsed again.
Every knob is documented in README.md.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Annotated, Any, Self

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.core.client_ip import Network, parse_networks

# A secret shorter than this is guessable offline from a single token (HS256 is a MAC).
MIN_SECRET_BYTES = 32
_WEAK_SECRETS = {"secret", "changeme", "change-me", "jwt-secret", "password", "dev", "test"}
_DAY = 86_400


class ConfigError(Exception):
    """The configuration cannot be used; the message is one line for the operator."""


def _networks(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_networks(value)
        except ValueError as error:
            raise ValueError(str(error)) from None
    return value


Seconds = Annotated[float, Field(gt=0, lt=_DAY)]
Networks = Annotated[
    tuple[Network, ...],
    NoDecode,  # a comma-separated list, not JSON
    BeforeValidator(_networks),
    PlainSerializer(lambda networks: ",".join(str(n) for n in networks)),
]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", case_sensitive=False, populate_by_name=True
    )

    database_url: str = ""
    redis_url: str = ""
    jwt_secret: SecretStr = SecretStr("")
    read_database_url: str | None = None
    port: int = Field(3000, ge=1, le=65535)
    host: str = "0.0.0.0"  # noqa: S104 - a server is meant to be reachable; set HOST to narrow it
    dev_mode: bool = Field(False, validation_alias="LEADERBOARD_DEV")
    rate_limit_per_minute: int = Field(10, ge=1, le=100_000)
    rate_limit_window_seconds: int = Field(60, ge=1, le=3600)
    login_attempts_per_minute: int = Field(10, ge=1, le=10_000)
    login_attempts_per_client_per_minute: int = Field(30, ge=1, le=100_000)
    access_token_ttl_seconds: int = Field(15 * 60, ge=2, le=_DAY)
    refresh_token_ttl_seconds: int = Field(30 * _DAY, ge=60, le=365 * _DAY)
    redis_namespace: str = Field("leaderboard", min_length=1, max_length=64)
    db_pool_min: int = Field(2, ge=0, le=1000)
    db_pool_max: int = Field(20, ge=1, le=1000)
    # Every wait on PostgreSQL is bounded (see docs/operations.md, "A slow or hung database").
    db_connect_timeout_seconds: Seconds = 3.0
    db_acquire_timeout_seconds: Seconds = 3.0
    db_statement_timeout_seconds: Seconds = 5.0
    db_rank_timeout_seconds: Seconds = 1.0
    catalog_refresh_seconds: Seconds = 30.0
    redis_timeout_seconds: Seconds = 1.0
    redis_retry_seconds: Seconds = 2.0
    # The rate gate waits longer than other Redis calls: a slow verdict is still exact.
    rate_limit_redis_timeout_seconds: Seconds = 3.0
    max_body_bytes: int = Field(16 * 1024, ge=1024, le=1 << 20)
    max_action_data_bytes: int = Field(4 * 1024, ge=0, le=1 << 20)
    ws_max_connections: int = Field(2000, ge=1, le=1_000_000)
    ws_max_per_user: int = Field(2, ge=1, le=100)
    ws_ping_interval_seconds: Seconds = 30.0
    ws_pong_timeout_seconds: Seconds = 10.0
    ws_auth_timeout_seconds: Seconds = 5.0
    ws_send_timeout_seconds: Seconds = 5.0
    ws_max_frame_bytes: int = Field(4096, ge=128, le=1 << 20)
    ws_connects_per_ip_per_minute: int = Field(60, ge=1, le=1_000_000)
    reconcile_interval_seconds: Seconds = 60.0
    # Reverse proxies whose X-Forwarded-For is believed (see app/core/client_ip.py).
    trusted_proxies: Networks = ()
    password_time_cost: int = Field(3, ge=1, le=10)
    password_memory_kib: int = Field(65536, ge=1024, le=1 << 21)
    # POST /api/action/complete answered on the front's lean path (app/edge/complete_http.py);
    # off: through Quart, as before (the benchmarks compare the two).
    complete_fast_path: bool = True
    # Completions arriving together commit in one statement (app/db/group_commit.py).
    group_commit: bool = True
    # Their applies to Redis go in one round trip (app/redis/group_apply.py).
    group_apply: bool = True
    # Ended sessions (bans, deletions, logout everywhere) are also read from PostgreSQL this
    # often, besides the immediate message: the bound on how late a node can learn of one.
    session_poll_seconds: float = Field(1.0, gt=0, le=5)
    # Server awards (POST /api/server/awards) per API key per rate-limit window.
    api_key_awards_per_minute: int = Field(1000, ge=1, le=1_000_000)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: Any, *_: Any, **__: Any
    ) -> tuple[Any, ...]:
        # Built from the values given, never from the environment behind the caller's back:
        # the environment is read only by from_env().
        return (init_settings,)

    @field_validator("read_database_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return value or None

    @model_validator(mode="after")
    def _dev_secret(self) -> Self:
        if self.dev_mode and not self.jwt_secret.get_secret_value():
            # Development only: a per-process secret means tokens die with the process, which
            # is what a developer expects and never what production gets.
            object.__setattr__(self, "jwt_secret", SecretStr(secrets.token_urlsafe(48)))
        return self

    @property
    def jwt_key(self) -> str:
        """The signing key itself (keep it out of logs and reprs: use only to sign/verify)."""
        return self.jwt_secret.get_secret_value()

    @property
    def jwt_secret_is_strong(self) -> bool:
        secret = self.jwt_key
        return len(secret.encode()) >= MIN_SECRET_BYTES and secret.lower() not in _WEAK_SECRETS

    def check_for_serving(self) -> None:
        """Refuse configurations that are unsafe outside development mode."""
        if not self.dev_mode and not self.jwt_secret_is_strong:
            raise ConfigError(
                f"JWT_SECRET is missing or weak: set at least {MIN_SECRET_BYTES} random bytes "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`), "
                "or set LEADERBOARD_DEV=1 for local development"
            )

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some knobs changed, checked like the original (tests, the dev stack)."""
        return _checked(lambda: Settings(**(self.model_dump() | changes)))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Parse the process environment, or ``env`` instead of it (it is never written)."""
        if env is None:
            return _checked(_FromEnvironment)
        by_variable = {
            str(field.validation_alias or name).upper(): name
            for name, field in cls.model_fields.items()
        }
        values: dict[str, Any] = {
            by_variable[name.upper()]: value
            for name, value in env.items()
            if name.upper() in by_variable
        }
        return _checked(lambda: Settings(**values))


class _FromEnvironment(Settings):
    """Settings read from the process environment (variables named as the fields)."""

    @classmethod
    def settings_customise_sources(  # type: ignore[override]
        cls, settings_cls: type[BaseSettings], *_: Any, env_settings: Any, **__: Any
    ) -> tuple[Any, ...]:
        return (env_settings,)


def _checked(build: Any) -> Settings:
    try:
        settings: Settings = build()
    except ValidationError as error:
        problems = "; ".join(
            f"{str(e['loc'][0]).upper() if e['loc'] else 'settings'}: {e['msg']}"
            for e in error.errors(include_url=False)
        )
        raise ConfigError(problems) from None
    return settings
