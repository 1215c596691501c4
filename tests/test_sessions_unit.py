"""The session guard in memory: tokens issued before a user's moment are refused with the
error that moment names; listeners hear of new moments once; old moments are forgotten."""

from __future__ import annotations

import pytest

from app.core.errors import AccountBanned, AccountGone, SessionEnded, TokenExpired, Unauthorized
from app.core.sessions import Reason, Revocation, SessionGuard
from app.core.tokens import Identity, issue_access_token, verify_access_claims

SECRET = "unit-secret-" + "y" * 40
ADA = Identity("6f1c0c1e-2f43-4d6a-9d59-6a3b1f0f0c11", "ada")


def token() -> str:
    return issue_access_token(ADA, SECRET, 900)


async def test_a_valid_token_passes_and_the_header_is_parsed() -> None:
    guard = SessionGuard(SECRET, 900)
    assert await guard.authenticate(f"Bearer {token()}") == ADA
    for header in (None, "", "Basic abc", "Bearer "):
        with pytest.raises(Unauthorized):
            await guard.authenticate(header)


@pytest.mark.parametrize(
    ("reason", "error"),
    [(Reason.LOGOUT, SessionEnded), (Reason.BANNED, AccountBanned), (Reason.DELETED, AccountGone)],
)
async def test_tokens_issued_before_the_moment_are_refused(reason: Reason, error: type) -> None:
    guard = SessionGuard(SECRET, 900)
    old = token()
    issued = verify_access_claims(old, SECRET).issued_ms
    guard.learn(Revocation(ADA.user_id, issued + 1, reason))
    with pytest.raises(error):
        await guard.authenticate(f"Bearer {old}")
    # A token issued after the moment is fine.
    guard.learn(Revocation(ADA.user_id, issued, reason))  # older: ignored
    with pytest.raises(error):
        guard.verify(old)


async def test_expired_beats_revoked_and_other_users_are_untouched() -> None:
    guard = SessionGuard(SECRET, 900)
    guard.learn(Revocation("00000000-0000-0000-0000-000000000001", 10**15, Reason.BANNED))
    assert guard.verify(token()).identity == ADA
    expired = issue_access_token(ADA, SECRET, -10)
    with pytest.raises(TokenExpired):
        guard.verify(expired)


def test_listeners_hear_each_new_moment_once() -> None:
    guard = SessionGuard(SECRET, 900)
    heard: list[Revocation] = []
    stop = guard.listen(heard.append)
    moment = Revocation(ADA.user_id, 1000, Reason.LOGOUT)
    guard.learn(moment)
    guard.learn(moment)  # the poll reads it again
    guard.learn_message(Revocation(ADA.user_id, 900, Reason.LOGOUT).encode())  # older
    guard.learn_message(b"garbage")
    guard.learn_message(Revocation(ADA.user_id, 2000, Reason.BANNED).encode())
    stop()
    guard.learn(Revocation(ADA.user_id, 3000, Reason.LOGOUT))
    assert [r.not_before_ms for r in heard] == [1000, 2000]


def test_moments_older_than_every_token_are_forgotten() -> None:
    now = [1_000_000.0]
    guard = SessionGuard(SECRET, 900, clock=lambda: now[0])
    guard.learn_all([Revocation(ADA.user_id, int(now[0] * 1000), Reason.LOGOUT)])
    assert guard.known == 1
    now[0] += 900 + 61
    guard.learn_all([])
    assert guard.known == 0


def test_a_revocation_survives_its_wire_form() -> None:
    moment = Revocation(ADA.user_id, 1795985087993, Reason.DELETED)
    assert Revocation.decode(moment.encode()) == moment
    assert Revocation.decode(b"a b c") is None
