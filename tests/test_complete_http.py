"""The lean completion path (app/edge/complete_http.py) answers exactly as Quart does.

Every case is sent twice, on fresh connections, to two fronts of one app: ``front`` (as
`leaderboard serve` wires it, the completion fast path on) and ``reference`` (the same front
with the fast paths off: Hypercorn and Quart answer). Each side gets its own players in the
same state, so a state-changing request meets the same state on both. The answers must agree
in status, every header but ``date`` (and a generated ``x-request-id``, which must be a fresh
id on both), and body; the metrics each answer moves must move the same way; and the access
log must say the same. A spy checks the fast path answered the cases it should.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import jwt
import pytest

from app.core.errors import CommitOutcomeUnknown, DatabaseUnavailable
from app.core.settings import Settings
from app.core.tokens import Identity, issue_access_token
from app.db.accounts import ensure_user
from app.db.actions import upsert_actions
from app.db.issuers import create_issuer
from app.edge import complete_http
from app.edge.serve import front_factory, hypercorn_config
from app.http.app import create_app
from app.http.services import Services
from tests.test_api_verification import SECRET as ISSUER_SECRET
from tests.test_api_verification import VERIFIED_ACTIONS

PATH = b"/api/action/complete"
RATE = 3  # the per-minute limit in these tests: a 429 is three requests away
GENERATED_ID = re.compile(rb"^[0-9a-f]{32}$")
# The only field that differs between two sides' answers: when each side's player completed.
COMPLETED_AT = re.compile(rb'"completedAt":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"')


def post(
    body: bytes,
    token: str | None = "TOKEN",
    content_type: bytes | None = b"application/json",
    extra: bytes = b"",
    target: bytes = PATH,
) -> bytes:
    head = b"POST " + target + b" HTTP/1.1\r\nHost: x\r\n"
    if token is not None:
        head += b"Authorization: Bearer " + token.encode() + b"\r\n"
    if content_type is not None:
        head += b"Content-Type: " + content_type + b"\r\n"
    return head + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


Prepare = Callable[["Player"], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    name: str
    request: bytes  # "TOKEN" in it is the side's own player's access token
    fast: bool = True  # the fast path answers it (else Hypercorn must)
    before: tuple[bytes, ...] = ()  # sent first on the same side, answers not compared
    fault: str = ""  # a failure the store raises during this case (both sides)
    account: str = ""  # "banned" or "ended": what happens to the player's account first


@dataclass(frozen=True)
class Player:
    identity: Identity
    token: str


GOOD = b'{"actionId": "quiz_a"}'
CASES = [
    Case("success", post(GOOD)),
    Case("success with data", post(b'{"actionId": "quiz_a", "data": {"answers": [1, 2]}}')),
    Case(
        "success, media type with parameters",
        post(GOOD, content_type=b"Application/JSON; charset=utf-8"),
    ),
    Case("success, +json media type", post(GOOD, content_type=b"application/vnd.x+json")),
    Case("success with a given request id", post(GOOD, extra=b"X-Request-ID: abc-123.Z_\r\n")),
    Case("insane request id", post(GOOD, extra=b"X-Request-ID: no spaces allowed\r\n")),
    Case("already completed", post(GOOD), before=(post(GOOD),)),
    Case("unknown action", post(b'{"actionId": "no_such"}')),
    Case("retired action", post(b'{"actionId": "retired"}')),
    Case(
        "rate limited",
        post(GOOD),
        before=tuple(post(b'{"actionId": "no_such"}') for _ in range(RATE)),
    ),
    Case("no Authorization", post(GOOD, token=None)),
    Case("not Bearer", post(GOOD).replace(b"Bearer TOKEN", b"Basic TOKEN")),
    Case("empty bearer", post(GOOD).replace(b"Bearer TOKEN", b"Bearer ")),
    Case("invalid token", post(GOOD).replace(b"TOKEN", b"abc.def.ghi")),
    Case("expired token", post(GOOD).replace(b"TOKEN", b"EXPIRED")),
    Case("bad token and bad body", post(b"{", token="nope")),
    Case("no Content-Type", post(GOOD, content_type=None)),
    Case("text/plain", post(GOOD, content_type=b"text/plain")),
    Case("form", post(b"actionId=quiz_a", content_type=b"application/x-www-form-urlencoded")),
    Case("not JSON", post(b"{actionId: quiz_a}")),
    Case("empty body", post(b"")),
    Case("invalid UTF-8", post(b'{"actionId": "\xff"}')),
    Case("NaN", post(b'{"actionId": "quiz_a", "data": NaN}')),
    Case("too deep", post(b'{"actionId": "quiz_a", "data": ' + b"[" * 40 + b"]" * 40 + b"}")),
    Case("a list", post(b'["quiz_a"]')),
    Case("null", post(b"null")),
    Case("no actionId", post(b"{}")),
    Case("actionId a number", post(b'{"actionId": 7}')),
    Case("actionId empty", post(b'{"actionId": ""}')),
    Case("actionId too long", post(b'{"actionId": "' + b"a" * 65 + b'"}')),
    Case("data over 4 KiB", post(b'{"actionId": "quiz_a", "data": "' + b"a" * 5000 + b'"}')),
    Case("account gone", post(GOOD).replace(b"TOKEN", b"GONE")),
    Case("account banned", post(GOOD), account="banned"),
    Case("account banned, body in a later write", post(GOOD)[:-5], account="banned", fast=False),
    Case("sessions ended", post(GOOD), account="ended"),
    # Verified actions (app/core/verification.py).
    Case(
        "quiz, right answers",
        post(b'{"actionId": "geo_quiz", "data": {"answers": [" paris", "SEVEN "]}}'),
    ),
    Case(
        "quiz, wrong answers",
        post(b'{"actionId": "geo_quiz", "data": {"answers": ["Lyon", "seven"]}}'),
    ),
    Case("quiz, no answers", post(b'{"actionId": "geo_quiz"}')),
    Case("server-only action", post(b'{"actionId": "tournament_win"}')),
    Case("receipt", post(b'{"actionId": "raid", "data": {"receipt": "RECEIPT"}}')),
    Case(
        "receipt reused",
        post(b'{"actionId": "raid", "data": {"receipt": "RECEIPT"}}'),
        before=(post(b'{"actionId": "raid", "data": {"receipt": "RECEIPT"}}'),),
    ),
    Case("receipt forged", post(b'{"actionId": "raid", "data": {"receipt": "FORGED"}}')),
    Case("receipt missing", post(b'{"actionId": "raid", "data": {}}')),
    Case("commit outcome unknown", post(GOOD), fault="unknown"),
    Case("database unavailable", post(GOOD), fault="unavailable"),
    Case("database unreachable", post(GOOD), fault="unreachable"),
    Case("unexpected failure", post(GOOD), fault="bug"),
    # Not the plain form: Hypercorn answers on both sides.
    Case("body too large", post(b" " * 20_000 + GOOD), fast=False),
    Case("query string", post(GOOD, target=PATH + b"?x=1"), fast=False),
    Case("Connection: close", post(GOOD, extra=b"Connection: close\r\n"), fast=False),
    Case("two Authorization headers", post(GOOD, extra=b"Authorization: Bearer x\r\n"), fast=False),
    Case(
        "chunked",
        post(b"", extra=b"Transfer-Encoding: chunked\r\n").replace(b"Content-Length: 0\r\n", b"")
        + b"16\r\n"
        + GOOD
        + b"\r\n0\r\n\r\n",
        fast=False,
    ),
]


@dataclass
class Sides:
    front: int
    reference: int
    svc: Services
    settings: Settings
    database_url: str
    fast: list[bytes]


@pytest.fixture
async def sides(
    settings: Settings,
    database_url: str,
    catalog_loaded: Any,
    redis: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Sides]:
    settings = settings.with_overrides(rate_limit_per_minute=RATE)
    conn = await asyncpg.connect(database_url)
    try:
        await upsert_actions(conn, VERIFIED_ACTIONS)
        await create_issuer(conn, "game-1", ISSUER_SECRET)
    finally:
        await conn.close()
    app = create_app(settings)
    await app.startup()
    loop = asyncio.get_running_loop()
    config = hypercorn_config("127.0.0.1", 0)
    fast: list[bytes] = []
    answer = complete_http.CompleteResponder.answer

    async def spy(self: complete_http.CompleteResponder, plain: complete_http.Plain) -> bytes:
        fast.append(plain.body)
        return await answer(self, plain)

    monkeypatch.setattr(complete_http.CompleteResponder, "answer", spy)
    front, front_down = front_factory(app, config)
    reference, reference_down = front_factory(app, config, board_fast_path=False)
    listening = [
        await loop.create_server(front, "127.0.0.1", 0),
        await loop.create_server(reference, "127.0.0.1", 0),
    ]
    ports = [server.sockets[0].getsockname()[1] for server in listening]
    try:
        yield Sides(*ports, app.extensions["leaderboard"], settings, database_url, fast)
    finally:
        for server in listening:
            server.close()
        await front_down.shutdown(0.5)
        await reference_down.shutdown(0.5)
        await app.shutdown()


async def exchange(port: int, *requests: bytes) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """Send ``requests`` on one connection, one after another; each answer (status, headers
    as a dict of lowercased names, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    try:
        for request in requests:
            writer.write(request)
            await writer.drain()
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head[:-4].split(b"\r\n")
                status = int(lines[0].split()[1])
                headers: dict[bytes, bytes] = {}
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    assert name.lower() not in headers, f"repeated header {name!r}"
                    headers[name.lower()] = value.strip()
                body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
            answers.append((status, headers, body))
            if headers.get(b"connection", b"").lower() == b"close":
                break
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return answers


async def new_player(sides: Sides, conn: asyncpg.Connection, name: str) -> Player:
    identity = await ensure_user(conn, name)
    token = issue_access_token(identity, sides.settings.jwt_key, 60)
    return Player(identity, token)


def receipt(player: Player, secret: str) -> str:
    now = int(time.time())
    claims = {
        "iss": "game-1",
        "sub": player.identity.user_id,
        "actionId": "raid",
        "jti": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 300,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def personal(request: bytes, player: Player, gone: Player, expired: str, token: str) -> bytes:
    """The request for this side's player: placeholders replaced (and, in the body, its
    Content-Length brought in line)."""
    head, _, body = request.partition(b"\r\n\r\n")
    head = (
        head.replace(b"EXPIRED", expired.encode())
        .replace(b"GONE", gone.token.encode())
        .replace(b"TOKEN", player.token.encode())
    )
    forged = receipt(player, "not-the-issuer-secret-" + "x" * 20)
    new_body = body.replace(b"RECEIPT", token.encode()).replace(b"FORGED", forged.encode())
    if new_body != body:
        head = head.replace(
            b"Content-Length: %d" % len(body), b"Content-Length: %d" % len(new_body)
        )
    return head + b"\r\n\r\n" + new_body


def metric_samples(svc: Services) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in svc.metrics.registry.collect():
        if family.name.startswith(("leaderboard_http", "leaderboard_rate_limit")):
            for sample in family.samples:
                if sample.name.endswith(("_total", "_count")):
                    found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def delta(before: dict[Any, float], after: dict[Any, float]) -> dict[Any, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


FAULTS: dict[str, Exception] = {
    "unknown": CommitOutcomeUnknown("quiz_a"),
    "unavailable": DatabaseUnavailable(),
    "unreachable": ConnectionError("connection refused"),
    "bug": RuntimeError("a bug"),
}


async def test_every_answer_is_quarts(sides: Sides, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    conn = await asyncpg.connect(sides.database_url)
    differences: list[str] = []
    seen_codes: set[tuple[int, bytes]] = set()
    try:
        for index, sent in enumerate(CASES):
            outcomes = {}
            for side, port in (("front", sides.front), ("reference", sides.reference)):
                player = await new_player(sides, conn, f"c{index}_{side[0]}")
                gone = await new_player(sides, conn, f"g{index}_{side[0]}")
                await conn.execute("DELETE FROM users WHERE id = $1", gone.identity.user_id)
                expired = issue_access_token(player.identity, sides.settings.jwt_key, -120)
                proof = receipt(player, ISSUER_SECRET)
                if sent.account == "banned":
                    assert await sides.svc.sessions.ban(player.identity.user_id)
                elif sent.account == "ended":
                    await sides.svc.sessions.end_all(player.identity.user_id)
                if sent.before:
                    await exchange(
                        port, *(personal(r, player, gone, expired, proof) for r in sent.before)
                    )
                if sent.fault:
                    fault = FAULTS[sent.fault]

                    async def failing(*_: object, fault: Exception = fault, **__: object) -> None:
                        raise fault

                    sides.svc.completions.commit = failing  # type: ignore[method-assign]
                sides.fast.clear()
                caplog.clear()
                metrics_before = metric_samples(sides.svc)
                try:
                    (answer,) = await exchange(
                        port, personal(sent.request, player, gone, expired, proof)
                    )
                finally:
                    vars(sides.svc.completions).pop("commit", None)
                status, headers, body = answer
                headers.pop(b"date")
                request_id = headers.pop(b"x-request-id")
                if b"X-Request-ID: abc" in sent.request:
                    assert request_id == b"abc-123.Z_"
                else:
                    assert GENERATED_ID.match(request_id), request_id
                logged = [
                    (r.name, r.levelname, r.getMessage())
                    for r in caplog.records
                    if r.name.startswith(("leaderboard.access", "app.http"))
                ]
                outcomes[side] = (
                    status,
                    headers,
                    COMPLETED_AT.sub(b'"completedAt":"<when>"', body),
                    delta(metrics_before, metric_samples(sides.svc)),
                    logged,
                )
                if side == "front":
                    code = re.search(rb'"code":"(\w+)"', body)
                    seen_codes.add((status, code.group(1) if code else b""))
                    assert bool(sides.fast) == sent.fast, f"{sent.name}: fast path {sides.fast}"
            if outcomes["front"] != outcomes["reference"]:
                differences.append(
                    f"{sent.name}:\n  front     {outcomes['front']}\n"
                    f"  reference {outcomes['reference']}"
                )
    finally:
        await conn.close()
    assert not differences, "\n".join(differences)
    # Every answer the route can give was compared (the cases above reach each).
    assert {
        (200, b""),
        (400, b"VALIDATION_ERROR"),
        (400, b"INVALID_ACTION"),
        (400, b"ALREADY_COMPLETED"),
        (400, b"VERIFICATION_FAILED"),
        (401, b"UNAUTHORIZED"),
        (401, b"TOKEN_EXPIRED"),
        (403, b"ACCOUNT_BANNED"),
        (403, b"SERVER_ONLY_ACTION"),
        (413, b"VALIDATION_ERROR"),
        (415, b"VALIDATION_ERROR"),
        (429, b"RATE_LIMIT_EXCEEDED"),
        (500, b"INTERNAL_SERVER_ERROR"),
        (503, b"COMMIT_OUTCOME_UNKNOWN"),
    } <= seen_codes, seen_codes


async def test_pipelined_completions_answer_in_order(sides: Sides) -> None:
    conn = await asyncpg.connect(sides.database_url)
    try:
        player = await new_player(sides, conn, "pipelined")
    finally:
        await conn.close()
    requests = [
        post(b'{"actionId": "%s"}' % action, token=player.token)
        for action in (b"quiz_a", b"quiz_b", b"quiz_a")
    ]
    reader, writer = await asyncio.open_connection("127.0.0.1", sides.front)
    writer.write(b"".join(requests) + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    received = b""
    async with asyncio.timeout(10):
        while received.count(b"HTTP/1.1 ") < 4 or not received.endswith(b'{"status":"ok"}'):
            received += await reader.read(65536)
    writer.close()
    statuses = re.findall(rb"HTTP/1.1 (\d+) ", received)
    assert statuses == [b"200", b"200", b"400", b"200"]
    assert received.count(b'"newScore":10') == 1 and received.count(b'"newScore":20') == 1
    assert b"ALREADY_COMPLETED" in received


async def test_a_body_in_a_later_write_is_waited_for_on_the_fast_path(sides: Sides) -> None:
    conn = await asyncpg.connect(sides.database_url)
    try:
        player = await new_player(sides, conn, "split_body")
    finally:
        await conn.close()
    request = post(GOOD, token=player.token)
    reader, writer = await asyncio.open_connection("127.0.0.1", sides.front)
    sides.fast.clear()
    writer.write(request[:-7])
    await writer.drain()
    # Shaping the input: the rest must arrive as a segment of its own.
    await asyncio.sleep(0.1)
    writer.write(request[-7:])
    await writer.drain()
    async with asyncio.timeout(10):
        head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    assert head.startswith(b"HTTP/1.1 200 ")
    assert sides.fast == [GOOD]
