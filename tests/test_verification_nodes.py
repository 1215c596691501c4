"""One receipt replayed on two real server processes (two nodes) at the same instant: the
unique receipt id in PostgreSQL awards it once. The log of both nodes never holds it."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import jwt

from app.core.catalog import Action
from app.core.tokens import issue_access_token
from app.db.accounts import ensure_user
from app.db.actions import upsert_actions
from app.db.issuers import create_issuer
from tests.conftest import TEST_SECRET
from tests.support.server_process import ServerProcess

ISSUER_SECRET = "node-test-issuer-" + "q" * 40
ROUNDS = 15


async def test_a_receipt_sent_to_two_nodes_at_once_is_awarded_once(
    service_env: dict[str, str], db: asyncpg.Connection, redis, tmp_path: Path
) -> None:
    await upsert_actions(db, [Action("raid", "Raid", 60, verification="receipt")])
    await create_issuer(db, "game-1", ISSUER_SECRET)
    with ServerProcess(service_env, tmp_path) as one, ServerProcess(service_env, tmp_path) as two:
        async with httpx.AsyncClient() as http:
            tokens = []
            for _ in range(ROUNDS):
                identity = await ensure_user(db, f"p_{uuid.uuid4().hex[:10]}")
                access = issue_access_token(identity, TEST_SECRET, 900)
                now = int(time.time())
                receipt = jwt.encode(
                    {
                        "iss": "game-1",
                        "sub": identity.user_id,
                        "actionId": "raid",
                        "jti": str(uuid.uuid4()),
                        "iat": now,
                        "exp": now + 300,
                    },
                    ISSUER_SECRET,
                    algorithm="HS256",
                )
                tokens.append(receipt)
                answers = await asyncio.gather(
                    *(
                        http.post(
                            f"{node.base_url}/api/action/complete",
                            json={"actionId": "raid", "data": {"receipt": receipt}},
                            headers={"Authorization": f"Bearer {access}"},
                        )
                        for node in (one, two)
                    )
                )
                assert sorted(a.status_code for a in answers) == [200, 400]
                loser = next(a for a in answers if a.status_code == 400).json()["error"]
                assert (loser["code"], loser["reason"]) == ("VERIFICATION_FAILED", "receipt_reused")
                assert receipt not in str(loser)
        logs = one.log() + two.log()
    assert await db.fetchval("SELECT count(*) FROM score_history") == ROUNDS
    assert await db.fetchval("SELECT sum(score) FROM users") == 60 * ROUNDS
    for receipt in tokens:
        assert receipt.split(".")[2] not in logs
    assert ISSUER_SECRET not in logs
