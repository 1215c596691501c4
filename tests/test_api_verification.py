"""Verified completions through the HTTP API, against real PostgreSQL and Redis: each kind,
a receipt replayed on two nodes at once, a revoked issuer, and no secret in any answer or log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import jwt
import orjson
import pytest
from quart.typing import TestAppProtocol as AppProtocol
from redis.asyncio import Redis

from app.core.catalog import Action, demo_catalog_path, parse_catalog_file
from app.core.errors import VerificationFailed
from app.core.settings import Settings
from app.db.actions import refresh_catalog, upsert_actions
from app.db.completions import commit_completion
from app.db.issuers import create_issuer, revoke_issuer
from app.http.app import create_app
from tests.conftest import Player, services_of

COMPLETE = "/api/action/complete"
SECRET = "issuer-secret-" + "k" * 40
ANSWERS = ("Paris", "Seven")
VERIFIED_ACTIONS = [
    Action(
        "geo_quiz",
        "Geography quiz",
        20,
        verification="quiz",
        questions=("Capital of France?", "How many continents?"),
        answers=ANSWERS,
    ),
    Action("raid", "Raid cleared", 60, verification="receipt"),
    Action("raid_2", "Second raid", 60, verification="receipt"),
    Action("tournament_win", "Tournament win", 100, verification="server"),
]


@contextlib.asynccontextmanager
async def node(settings: Settings) -> AsyncIterator[AppProtocol]:
    """One app instance (a node) on the test's database and Redis namespace."""
    quart_app = create_app(settings)
    async with quart_app.test_app() as test_app:
        yield test_app


@pytest.fixture
async def app(
    settings: Settings, catalog_loaded: list[Action], redis: Redis, db: asyncpg.Connection
) -> AsyncIterator[AppProtocol]:
    await upsert_actions(db, VERIFIED_ACTIONS)
    await create_issuer(db, "game-1", SECRET)
    async with node(settings) as first:
        yield first


def receipt(player: Player, action_id: str = "raid", **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": "game-1",
        "sub": player.user_id,
        "actionId": action_id,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 300,
    } | overrides
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def complete(client: Any, player: Player, action_id: str, data: Any = None) -> Any:
    body: dict[str, Any] = {"actionId": action_id}
    if data is not None:
        body["data"] = data
    return await client.post(COMPLETE, json=body, headers=player.headers)


async def refusal(response: Any) -> dict[str, Any]:
    assert response.status_code == 400
    error: dict[str, Any] = (await response.get_json())["error"]
    assert error["code"] == "VERIFICATION_FAILED"
    assert error["details"] == {"reason": error["reason"]}
    return error


async def test_the_catalog_lists_kinds_and_questions_but_never_answers(client) -> None:
    response = await client.get("/api/actions")
    raw = await response.get_data()
    actions = {a["actionId"]: a for a in orjson.loads(raw)["actions"]}
    assert actions["geo_quiz"]["verification"] == "quiz"
    assert actions["geo_quiz"]["questions"] == ["Capital of France?", "How many continents?"]
    assert actions["raid"]["verification"] == "receipt"
    assert actions["tournament_win"]["verification"] == "server"
    assert actions["quiz_a"] == actions["quiz_a"] | {"verification": "claim", "questions": []}
    for answer in ANSWERS:
        assert answer.encode() not in raw and answer.lower().encode() not in raw
    assert b"answers" not in raw


async def test_a_quiz_is_completed_with_the_right_answers(client, make_player, db) -> None:
    alice = await make_player()
    wrong = await complete(client, alice, "geo_quiz", {"answers": ["Lyon", "seven"]})
    assert (await refusal(wrong))["reason"] == "answers_wrong"
    missing = await complete(client, alice, "geo_quiz")
    assert (await refusal(missing))["reason"] == "answers_missing"
    assert await db.fetchval("SELECT count(*) FROM score_history") == 0

    right = await complete(client, alice, "geo_quiz", {"answers": [" paris", "SEVEN "]})

    assert right.status_code == 200
    assert (await right.get_json())["pointsEarned"] == 20


async def test_a_receipt_completes_the_action_once(client, make_player, db) -> None:
    alice = await make_player()
    token = receipt(alice)

    first = await complete(client, alice, "raid", {"receipt": token})
    again = await complete(client, alice, "raid", {"receipt": token})

    assert first.status_code == 200 and (await first.get_json())["pointsEarned"] == 60
    assert (await refusal(again))["reason"] == "receipt_reused"
    rows = await db.fetch("SELECT action_id, receipt_jti FROM score_history")
    assert [(r["action_id"], r["receipt_jti"]) for r in rows] == [
        ("raid", jwt.decode(token, SECRET, algorithms=["HS256"])["jti"])
    ]


async def test_a_spent_receipt_id_is_refused_by_the_database_on_another_action(
    client, make_player, db
) -> None:
    alice = await make_player()
    assert (
        await complete(client, alice, "raid", {"receipt": receipt(alice, jti="j-1")})
    ).status_code == 200
    other = await complete(
        client, alice, "raid_2", {"receipt": receipt(alice, "raid_2", jti="j-1")}
    )
    assert (await refusal(other))["reason"] == "receipt_reused"
    assert await db.fetchval("SELECT score FROM users WHERE id = $1", alice.user_id) == 60


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"sub": str(uuid.uuid4())}, "wrong_user"),
        ({"actionId": "raid_2"}, "wrong_action"),
        ({"iss": "game-9"}, "unknown_issuer"),
        ({"iat": int(time.time()) - 900, "exp": int(time.time()) - 300}, "receipt_expired"),
        ({"iat": int(time.time()), "exp": int(time.time()) + 601}, "receipt_lifetime_too_long"),
    ],
)
async def test_a_bad_receipt_is_refused_with_its_reason(
    client, make_player, db, change: dict[str, Any], reason: str
) -> None:
    alice = await make_player()
    response = await complete(client, alice, "raid", {"receipt": receipt(alice, **change)})
    assert (await refusal(response))["reason"] == reason
    assert await db.fetchval("SELECT count(*) FROM score_history") == 0


async def test_a_forged_signature_is_refused(client, make_player) -> None:
    alice = await make_player()
    forged = jwt.encode(
        {
            "iss": "game-1",
            "sub": alice.user_id,
            "actionId": "raid",
            "jti": "x",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        "not-the-secret-" + "z" * 40,
        algorithm="HS256",
    )
    response = await complete(client, alice, "raid", {"receipt": forged})
    assert (await refusal(response))["reason"] == "bad_signature"


async def test_a_revoked_issuers_receipts_are_refused_at_once(client, make_player, db) -> None:
    alice = await make_player()
    token = receipt(alice)
    assert await revoke_issuer(db, "game-1") is not None

    response = await complete(client, alice, "raid", {"receipt": token})

    assert (await refusal(response))["reason"] == "issuer_revoked"


async def test_a_server_action_cannot_be_completed_by_a_player(client, make_player) -> None:
    alice = await make_player()
    response = await complete(client, alice, "tournament_win", {"receipt": receipt(alice)})
    assert response.status_code == 403
    assert (await response.get_json())["error"]["code"] == "SERVER_ONLY_ACTION"


async def test_a_failed_proof_counts_against_the_rate_limit(client, make_player) -> None:
    alice = await make_player()
    for _ in range(10):
        await complete(client, alice, "geo_quiz", {"answers": ["x", "y"]})
    limited = await complete(client, alice, "geo_quiz", {"answers": list(ANSWERS)})
    assert limited.status_code == 429


async def test_one_receipt_replayed_on_two_nodes_at_once_awards_once(
    app, settings: Settings, make_player, db
) -> None:
    async with node(settings) as second:
        clients = (app.test_client(), second.test_client())
        for _ in range(12):
            alice = await make_player()
            token = receipt(alice)
            answers = await asyncio.gather(
                *(complete(c, alice, "raid", {"receipt": token}) for c in clients)
            )
            statuses = sorted(a.status_code for a in answers)
            assert statuses == [200, 400]
            loser = next(a for a in answers if a.status_code == 400)
            assert (await refusal(loser))["reason"] == "receipt_reused"
            assert await db.fetchval("SELECT score FROM users WHERE id = $1", alice.user_id) == 60
    assert await db.fetchval("SELECT count(*) FROM score_history") == 12


async def test_the_commit_refuses_a_spent_receipt_id(db, make_player, catalog_loaded) -> None:
    await upsert_actions(db, VERIFIED_ACTIONS)
    alice = await make_player()
    assert await commit_completion(db, alice.user_id, "raid", receipt_jti="r-1") is not None
    with pytest.raises(VerificationFailed) as refused:
        await commit_completion(db, alice.user_id, "raid_2", receipt_jti="r-1")
    assert refused.value.reason == "receipt_reused"


async def test_no_secret_answer_or_receipt_in_any_answer_or_log_line(
    client, make_player, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = await make_player()
    tokens = [
        receipt(alice, sub=str(uuid.uuid4())),
        receipt(alice, iss="game-9"),
        receipt(alice, "raid_2"),
        receipt(alice),
        receipt(alice),  # sent twice: the second is a reuse
    ]
    bodies = [
        await (await complete(client, alice, "raid", {"receipt": t})).get_data() for t in tokens
    ]
    bodies.append(await (await complete(client, alice, "raid", {"receipt": tokens[-1]})).get_data())
    bodies.append(
        await (await complete(client, alice, "geo_quiz", {"answers": ["Paris", "six"]})).get_data()
    )
    bodies.append(await (await client.get("/api/actions")).get_data())
    text = b" ".join(bodies).decode() + " ".join(r.getMessage() for r in caplog.records)
    for token in tokens:
        assert token not in text and token.split(".")[2] not in text
    for secret in (SECRET, "Seven", "seven"):
        assert secret not in text


async def test_an_action_switched_in_the_database_is_refused_before_the_node_refreshes(
    client, make_player, db
) -> None:
    # The node read quiz_a as a claim; an operator has since made it a receipt action and
    # quiz_b a server action. The nodes' copies refresh every CATALOG_REFRESH_SECONDS; the
    # commit itself refuses on the new rule meanwhile.
    await db.execute("UPDATE actions SET verification = 'receipt' WHERE id = 'quiz_a'")
    await db.execute("UPDATE actions SET verification = 'server' WHERE id = 'quiz_b'")
    alice = await make_player()

    switched = await complete(client, alice, "quiz_a")
    server_only = await complete(client, alice, "quiz_b")

    assert (await refusal(switched))["reason"] == "verification_changed"
    assert server_only.status_code == 403
    assert (await server_only.get_json())["error"]["code"] == "SERVER_ONLY_ACTION"
    assert await db.fetchval("SELECT count(*) FROM score_history") == 0
    assert (await complete(client, alice, "quiz_c")).status_code == 200  # unchanged: a claim


async def test_the_demo_catalogs_answers_never_reach_a_client(client, db, make_player) -> None:
    demo = parse_catalog_file(demo_catalog_path())
    await upsert_actions(db, demo)
    await refresh_catalog(services_of(client.app).catalog, db)
    raw = (await (await client.get("/api/actions")).get_data()).decode().casefold()
    quizzes = [a for a in demo if a.verification == "quiz"]
    assert quizzes and all(f'"{q.questions[0]}"'.casefold() in raw for q in quizzes)
    for quiz in quizzes:
        for answer in quiz.answers:
            assert answer.casefold() not in raw
    # The documented curl example scores.
    alice = await make_player()
    done = await complete(client, alice, "quiz_rules", {"answers": ["paris", "Jupiter"]})
    assert done.status_code == 200
