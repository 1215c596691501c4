"""Accounts (app/core/accounts.py) against in-memory twins: registration, login, rotation."""

from __future__ import annotations

import pytest

from app.core import accounts
from app.core.errors import InvalidInput, RateLimited, Unauthorized, UsernameTaken
from app.core.passwords import Passwords
from app.core.settings import Settings
from app.core.tokens import verify_access_token
from tests.support.twins import MemoryAccounts, MemoryDatabase, MemoryRateGate

SETTINGS = Settings(jwt_secret="s" * 48, login_attempts_per_minute=3)
PASSWORDS = Passwords(time_cost=1, memory_kib=1024)


@pytest.fixture
def store() -> MemoryAccounts:
    return MemoryAccounts(MemoryDatabase())


async def login(
    store: MemoryAccounts, gate: MemoryRateGate, username: str, password: str
) -> accounts.TokenPair:
    return await accounts.login(
        accounts=store,
        passwords=PASSWORDS,
        gate=gate,
        settings=SETTINGS,
        username=username,
        password=password,
        client="203.0.113.7",
    )


async def test_register_then_login_gives_a_token_for_that_user(store: MemoryAccounts) -> None:
    alice = await accounts.register(store, PASSWORDS, "alice", "correct horse")
    pair = await login(store, MemoryRateGate(), "ALICE", "correct horse")
    assert verify_access_token(pair.access_token, SETTINGS.jwt_key) == alice


@pytest.mark.parametrize(
    ("username", "password"),
    [("al", "long enough"), ("alice", "short"), ("alice\n", "long enough")],
)
async def test_bad_names_and_passwords_are_refused(
    store: MemoryAccounts, username: str, password: str
) -> None:
    with pytest.raises(InvalidInput):
        await accounts.register(store, PASSWORDS, username, password)


async def test_a_taken_name_is_refused_whatever_its_case(store: MemoryAccounts) -> None:
    await accounts.register(store, PASSWORDS, "alice", "correct horse")
    with pytest.raises(UsernameTaken):
        await accounts.register(store, PASSWORDS, "Alice", "correct horse")


async def test_wrong_passwords_and_unknown_users_look_the_same(store: MemoryAccounts) -> None:
    await accounts.register(store, PASSWORDS, "alice", "correct horse")
    gate = MemoryRateGate()
    with pytest.raises(Unauthorized) as wrong:
        await login(store, gate, "alice", "wrong horse")
    with pytest.raises(Unauthorized) as unknown:
        await login(store, gate, "nobody", "wrong horse")
    assert wrong.value.message == unknown.value.message


async def test_login_attempts_per_username_are_limited(store: MemoryAccounts) -> None:
    gate = MemoryRateGate()
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await login(store, gate, "alice", "wrong horse")
    with pytest.raises(RateLimited):
        await login(store, gate, "alice", "wrong horse")


async def test_a_refresh_token_works_once_and_its_reuse_ends_the_family(
    store: MemoryAccounts,
) -> None:
    await accounts.register(store, PASSWORDS, "alice", "correct horse")
    first = await login(store, MemoryRateGate(), "alice", "correct horse")
    second = await accounts.refresh(store, SETTINGS, first.refresh_token)
    with pytest.raises(Unauthorized):
        await accounts.refresh(store, SETTINGS, first.refresh_token)  # a stolen copy
    with pytest.raises(Unauthorized):
        await accounts.refresh(store, SETTINGS, second.refresh_token)  # family revoked
