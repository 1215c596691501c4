"""Configuration: parsed once, validated, secrets kept out of reprs."""

from __future__ import annotations

import pytest

from app.core.settings import ConfigError, Settings

STRONG = "k" * 48


def test_defaults_follow_the_spec() -> None:
    settings = Settings.from_env({"JWT_SECRET": STRONG})
    assert settings.port == 3000
    assert settings.rate_limit_per_minute == 10
    assert settings.access_token_ttl_seconds == 15 * 60
    assert settings.ws_max_connections == 2000
    assert settings.ws_max_per_user == 2


@pytest.mark.parametrize("secret", ["", "secret", "short-but-not-empty", "changeme"])
def test_a_missing_or_weak_secret_is_refused_outside_dev_mode(secret: str) -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        Settings.from_env({"JWT_SECRET": secret}).check_for_serving()


def test_dev_mode_makes_up_a_secret_when_none_is_given() -> None:
    settings = Settings.from_env({"LEADERBOARD_DEV": "1"})
    settings.check_for_serving()
    assert len(settings.jwt_key) >= 32


def test_the_secret_never_appears_in_repr() -> None:
    assert STRONG not in repr(Settings.from_env({"JWT_SECRET": STRONG}))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("RATE_LIMIT_PER_MINUTE", "0"),
        ("WS_PING_INTERVAL_SECONDS", "-1"),
    ],
)
def test_bad_numbers_are_explained(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({"JWT_SECRET": STRONG, name: value})


def test_knobs_are_read() -> None:
    settings = Settings.from_env(
        {
            "JWT_SECRET": STRONG,
            "PORT": "8080",
            "RATE_LIMIT_PER_MINUTE": "25",
            "READ_DATABASE_URL": "postgresql://r/x",
        }
    )
    assert (settings.port, settings.rate_limit_per_minute) == (8080, 25)
    assert settings.read_database_url == "postgresql://r/x"
