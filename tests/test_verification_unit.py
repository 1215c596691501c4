"""Verification kinds (app/core/verification.py) through complete_action, on in-memory twins:
each kind's accept and every reason a proof is refused."""

from __future__ import annotations

import logging
import re
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest

from app.core.catalog import Action, Catalog
from app.core.errors import RateLimited, ServerOnlyAction, VerificationFailed
from app.core.scoring import Completion, complete_action
from app.core.tokens import Identity
from app.core.verification import answers_match
from tests.support.twins import (
    MemoryCompletions,
    MemoryDatabase,
    MemoryIssuers,
    MemoryRanking,
    MemoryRateGate,
)

SECRET = "s" * 43
OTHER_SECRET = "o" * 43
ACTIONS = [
    Action("login", "Login", 5),
    Action(
        "quiz",
        "Quiz",
        10,
        verification="quiz",
        questions=("Colour of the sky?", "Six times seven?"),
        answers=("Blue", "42"),
    ),
    Action("level", "Level", 50, verification="receipt"),
    Action("other_level", "Other level", 50, verification="receipt"),
    Action("boss", "Boss", 100, verification="server"),
]


class World:
    def __init__(self) -> None:
        self.db = MemoryDatabase(
            active_actions={a.id: a.points for a in ACTIONS},
            action_kinds={a.id: a.verification for a in ACTIONS},
        )
        self.store = MemoryCompletions(self.db)
        self.issuers = MemoryIssuers()
        self.issuers.add("game-1", SECRET)
        self.gate = MemoryRateGate()

    async def complete(
        self, who: Identity, action_id: str, data: Any = None, limit: int = 100
    ) -> Completion:
        return await complete_action(
            identity=who,
            action_id=action_id,
            data=data,
            store=self.store,
            catalog=Catalog(ACTIONS),
            gate=self.gate,
            ranking=MemoryRanking(),
            issuers=self.issuers,
            limit_per_minute=limit,
        )

    async def refused(self, who: Identity, action_id: str, data: Any) -> str:
        """The reason the completion was refused; asserts nothing was recorded."""
        before = dict(self.db.history)
        with pytest.raises(VerificationFailed) as refusal:
            await self.complete(who, action_id, data)
        assert self.db.history == before
        assert refusal.value.code == "VERIFICATION_FAILED"
        reason = refusal.value.reason
        assert refusal.value.details == {"reason": reason, "details": {"reason": reason}}
        return refusal.value.reason


def receipt(
    who: Identity | str,
    action_id: str = "level",
    *,
    iss: str = "game-1",
    secret: str = SECRET,
    lifetime: int = 300,
    iat: int | None = None,
    algorithm: str = "HS256",
    drop: tuple[str, ...] = (),
    **extra: Any,
) -> str:
    now = int(time.time()) if iat is None else iat
    claims = {
        "iss": iss,
        "sub": who.user_id if isinstance(who, Identity) else who,
        "actionId": action_id,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "exp": now + lifetime,
    } | extra
    for name in drop:
        claims.pop(name)
    return jwt.encode(claims, secret, algorithm=algorithm)


@pytest.fixture
def world() -> World:
    return World()


# -- claim and server -------------------------------------------------------------------------


async def test_a_claim_needs_no_data(world: World) -> None:
    alice = world.db.add_user("alice")
    assert (await world.complete(alice, "login", {"anything": 1})).points_earned == 5


async def test_a_server_action_cannot_be_completed_by_a_player(world: World) -> None:
    alice = world.db.add_user("alice")
    with pytest.raises(ServerOnlyAction) as refusal:
        await world.complete(alice, "boss", {"receipt": receipt(alice, "boss")})
    assert refusal.value.code == "SERVER_ONLY_ACTION"
    assert world.db.history == {}


# -- quiz -------------------------------------------------------------------------------------


async def test_right_answers_complete_a_quiz_whatever_the_case_and_spacing(world: World) -> None:
    alice = world.db.add_user("alice")
    done = await world.complete(alice, "quiz", {"answers": ["  bLUE ", "42\n"]})
    assert done.points_earned == 10


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (None, "answers_missing"),
        ({}, "answers_missing"),
        ("blue", "answers_missing"),
        ({"answers": "blue,42"}, "answers_malformed"),
        ({"answers": ["blue"]}, "answers_malformed"),
        ({"answers": ["blue", "42", "extra"]}, "answers_malformed"),
        ({"answers": ["blue", 42]}, "answers_malformed"),
        ({"answers": ["blue", "41"]}, "answers_wrong"),
        ({"answers": ["42", "blue"]}, "answers_wrong"),
        ({"answers": ["blu e", "42"]}, "answers_wrong"),
        ({"answers": ["", ""]}, "answers_wrong"),
    ],
)
async def test_wrong_or_missing_answers_are_refused(world: World, data: Any, reason: str) -> None:
    alice = world.db.add_user("alice")
    assert await world.refused(alice, "quiz", data) == reason


async def test_a_wrong_answer_counts_against_the_rate_limit(world: World) -> None:
    alice = world.db.add_user("alice")
    for _ in range(3):
        with pytest.raises(VerificationFailed):
            await world.complete(alice, "quiz", {"answers": ["red", "1"]}, limit=3)
    with pytest.raises(RateLimited):
        await world.complete(alice, "quiz", {"answers": ["blue", "42"]}, limit=3)


def test_answers_match_compares_every_answer() -> None:
    assert answers_match(["A", "b"], ("a", "B"))
    assert not answers_match(["a"], ("a", "b"))
    assert not answers_match(["x", "b"], ("a", "b"))
    assert answers_match(["Straße"], ("STRASSE",))  # casefold, not lower


def test_the_answer_key_is_not_in_an_actions_repr() -> None:
    assert "42" not in repr(ACTIONS[1]) and "Blue" not in repr(ACTIONS[1])


# -- receipt ----------------------------------------------------------------------------------


async def test_a_valid_receipt_completes_the_action_and_spends_its_jti(world: World) -> None:
    alice = world.db.add_user("alice")
    token = receipt(alice)
    assert (await world.complete(alice, "level", {"receipt": token})).points_earned == 50
    assert len(world.db.receipt_jtis) == 1


async def test_a_receipt_is_accepted_once(world: World) -> None:
    alice = world.db.add_user("alice")
    token = receipt(alice)
    await world.complete(alice, "level", {"receipt": token})
    assert await world.refused(alice, "level", {"receipt": token}) == "receipt_reused"


async def test_a_spent_jti_is_refused_on_another_action_too(world: World) -> None:
    alice = world.db.add_user("alice")
    await world.complete(alice, "level", {"receipt": receipt(alice, jti="once")})
    again = receipt(alice, "other_level", jti="once")
    assert await world.refused(alice, "other_level", {"receipt": again}) == "receipt_reused"


async def test_a_revoked_issuer_is_refused_at_once(world: World) -> None:
    alice = world.db.add_user("alice")
    token = receipt(alice)
    world.issuers.revoke("game-1")
    assert await world.refused(alice, "level", {"receipt": token}) == "issuer_revoked"


def _now() -> int:
    return int(time.time())


# Each case: (receipt maker, data maker) -> reason. `who` is the caller.
RECEIPT_REFUSALS: list[tuple[str, Any]] = [
    ("receipt_missing", lambda who: None),
    ("receipt_missing", lambda who: {}),
    ("receipt_missing", lambda who: {"receipt": 42}),
    ("receipt_missing", lambda who: {"receipt": ""}),
    ("receipt_malformed", lambda who: {"receipt": "not.a.jws"}),
    ("receipt_malformed", lambda who: {"receipt": "x" * 5000}),
    ("receipt_malformed", lambda who: {"receipt": receipt(who, jti="j" * 129)}),
    ("receipt_malformed", lambda who: {"receipt": receipt(who, jti=7)}),
    ("receipt_malformed", lambda who: {"receipt": receipt(who, lifetime=0, exp="later")}),
    (
        "unsupported_algorithm",
        lambda who: {"receipt": receipt(who, secret="", algorithm="none")},
    ),
    (
        "unsupported_algorithm",
        lambda who: {"receipt": receipt(who, secret="h" * 64, algorithm="HS384")},
    ),
    ("unknown_issuer", lambda who: {"receipt": receipt(who, iss="game-2")}),
    ("unknown_issuer", lambda who: {"receipt": receipt(who, iss="Not A Name!")}),
    ("missing_claim", lambda who: {"receipt": receipt(who, drop=("iss",))}),
    ("bad_signature", lambda who: {"receipt": receipt(who, secret=OTHER_SECRET)}),
    ("receipt_expired", lambda who: {"receipt": receipt(who, iat=_now() - 700, lifetime=600)}),
    ("receipt_not_yet_valid", lambda who: {"receipt": receipt(who, iat=_now() + 120)}),
    ("receipt_lifetime_too_long", lambda who: {"receipt": receipt(who, lifetime=601)}),
    ("wrong_user", lambda who: {"receipt": receipt(str(uuid.uuid4()))}),
    ("wrong_action", lambda who: {"receipt": receipt(who, "other_level")}),
    *[
        ("missing_claim", (lambda c: lambda who: {"receipt": receipt(who, drop=(c,))})(claim))
        for claim in ("sub", "actionId", "jti", "iat", "exp")
    ],
]


@pytest.mark.parametrize(("reason", "make_data"), RECEIPT_REFUSALS)
async def test_every_bad_receipt_is_refused_with_its_reason(
    world: World, reason: str, make_data: Any
) -> None:
    alice = world.db.add_user("alice")
    assert await world.refused(alice, "level", make_data(alice)) == reason


async def test_no_refusal_echoes_the_receipt_or_the_secret(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = world.db.add_user("alice")
    tokens = [
        receipt(alice, secret=OTHER_SECRET),
        receipt(alice, iss="game-2"),
        receipt(alice, "other_level"),
        receipt(alice, iat=_now() - 700, lifetime=600),
    ]
    messages = []
    for token in tokens:
        with pytest.raises(VerificationFailed) as refusal:
            await world.complete(alice, "level", {"receipt": token})
        messages.append(f"{refusal.value.message} {refusal.value.details}")
    with pytest.raises(VerificationFailed) as wrong:
        await world.complete(alice, "quiz", {"answers": ["crimson", "7"]})
    messages.append(f"{wrong.value.message} {wrong.value.details}")
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "receipt refused" in logged  # operators still see why (without the receipt)
    for text in [*messages, logged]:
        for token in tokens:
            assert token not in text
            assert token.split(".")[2] not in text  # not even the signature
        # Not "42": the log names the user by a random UUID, whose hex may hold those digits.
        for secret in (SECRET, OTHER_SECRET, "Blue", "crimson"):
            assert secret not in text


async def test_the_documented_five_line_receipt_is_accepted(world: World) -> None:
    """docs/api.md's Python example, run as a game-server developer would copy it."""
    docs = (Path(__file__).parents[1] / "docs" / "api.md").read_text()
    example = re.search(r"```python\n(.*?)```", docs, re.S)
    assert example is not None
    code = example.group(1)
    assert len([line for line in code.splitlines() if not line.startswith("#")]) <= 5
    alice = world.db.add_user("alice")
    world.issuers.add("game-eu-1", SECRET)
    world.db.active_actions["boss_raid"] = 80
    world.db.action_kinds["boss_raid"] = "receipt"
    namespace: dict[str, Any] = {"user_id": alice.user_id, "GAME_SECRET": SECRET}
    exec(code, namespace)  # noqa: S102  # our own documentation, not input
    boss_raid = Action("boss_raid", "Boss raid", 80, verification="receipt")
    done = await complete_action(
        identity=alice,
        action_id="boss_raid",
        data={"receipt": namespace["receipt"]},
        store=world.store,
        catalog=Catalog([*ACTIONS, boss_raid]),
        gate=world.gate,
        ranking=MemoryRanking(),
        issuers=world.issuers,
        limit_per_minute=10,
    )
    assert done.points_earned == 80


@pytest.mark.parametrize(
    ("now_stored", "refusal"),
    [("receipt", VerificationFailed), ("quiz", VerificationFailed), ("server", ServerOnlyAction)],
)
async def test_an_action_switched_since_the_nodes_copy_is_refused_on_the_new_rule(
    world: World, now_stored: str, refusal: type[Exception]
) -> None:
    """The node's catalog still says claim; the database says otherwise: nothing is awarded."""
    alice = world.db.add_user("alice")
    world.db.action_kinds["login"] = now_stored
    with pytest.raises(refusal) as refused:
        await world.complete(alice, "login")
    if isinstance(refused.value, VerificationFailed):
        assert refused.value.reason == "verification_changed"
    assert world.db.history == {}
