"""Hostile or broken request bodies are the client's mistake: a 4xx in the error format, never
a 500 and never an ERROR line in the log. The size limit is checked over a real socket, where
Hypercorn and Quart decide what a client actually receives."""

from __future__ import annotations

import logging
import socket

import pytest

from app.db.actions import upsert_actions
from tests.conftest import TEST_ACTIONS
from tests.support.server_process import ServerProcess

LOGIN = "/api/auth/login"
REGISTER = "/api/auth/register"
COMPLETE = "/api/action/complete"
JSON = {"Content-Type": "application/json"}


async def post_raw(client, path: str, body: bytes, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return await client.post(path, data=body, headers={**JSON, **(headers or {})})


def assert_no_error_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


@pytest.mark.parametrize(
    "body",
    [
        b"\xbd",
        b'{"username": "al\xffice", "password": "long enough"}',
        b"\xef\xbb\xbf{}",  # a byte order mark
        b'{"username": "\\ud800", "password": "long enough"}',  # a lone surrogate
    ],
    ids=["lone-byte", "bad-byte-in-string", "bom", "lone-surrogate"],
)
async def test_bytes_that_are_not_utf8_json_are_a_validation_error(client, caplog, body) -> None:
    response = await post_raw(client, LOGIN, body)
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "VALIDATION_ERROR"
    assert_no_error_logged(caplog)


# 255 deep once crashed the size check of `data` (orjson.dumps stops at 254); 5,000 deep,
# the standard library's parser.
@pytest.mark.parametrize("depth", [33, 255, 5_000])
async def test_deeply_nested_json_is_a_validation_error(client, make_player, caplog, depth) -> None:
    alice = await make_player()
    nested = b"[" * depth + b"]" * depth
    for path, body, headers in (
        (LOGIN, nested, {}),
        (COMPLETE, b'{"actionId": "quiz_a", "data": ' + nested + b"}", alice.headers),
    ):
        response = await post_raw(client, path, body, headers)
        assert response.status_code == 400, (path, depth)
        assert (await response.get_json())["error"]["code"] == "VALIDATION_ERROR"
    assert_no_error_logged(caplog)


async def test_nesting_within_the_limit_is_accepted(client, make_player) -> None:
    alice = await make_player()
    data = b"[" * 31 + b"]" * 31  # with the body object around it: 32 levels
    response = await post_raw(
        client, COMPLETE, b'{"actionId": "quiz_a", "data": ' + data + b"}", alice.headers
    )
    assert response.status_code == 200


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
async def test_numbers_json_cannot_express_are_refused(
    client, make_player, caplog, constant
) -> None:
    alice = await make_player()
    response = await post_raw(
        client, COMPLETE, b'{"actionId": "quiz_a", "data": ' + constant + b"}", alice.headers
    )
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "VALIDATION_ERROR"
    assert_no_error_logged(caplog)


@pytest.mark.parametrize(
    ("path", "field", "body"),
    [
        (REGISTER, "password", {"username": "alice", "password": "long\x00enough"}),
        (REGISTER, "username", {"username": "al\x00ice", "password": "long enough"}),
        (LOGIN, "password", {"username": "alice", "password": "long\x00enough"}),
        (LOGIN, "username", {"username": "al\x00ice", "password": "long enough"}),
    ],
    ids=["register-password", "register-username", "login-password", "login-username"],
)
async def test_a_nul_character_in_credentials_is_refused(
    client, db, caplog, path, field, body
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == 400
    error = (await response.get_json())["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert [f["field"] for f in error["fields"]] == [field]
    assert await db.fetchval("SELECT count(*) FROM users") == 0
    assert_no_error_logged(caplog)


async def test_a_body_not_declared_as_json_is_unsupported(client, make_player) -> None:
    alice = await make_player()
    for headers in ({"Content-Type": "text/plain"}, {}):
        response = await client.post(
            COMPLETE, data=b'{"actionId": "quiz_a"}', headers={**alice.headers, **headers}
        )
        assert response.status_code == 415, headers
        assert (await response.get_json())["error"]["code"] == "VALIDATION_ERROR"


def post_over_socket(port: int, body: bytes) -> bytes:
    """POST ``body`` as a plain client would (send everything, then read the answer) and
    return what came back, up to the server closing the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/auth/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        try:
            sock.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered without reading it all; the answer is still there
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


async def test_a_20_mb_body_gets_a_clean_413_over_the_wire(
    service_env, db, tmp_path, redis
) -> None:
    await upsert_actions(db, TEST_ACTIONS)
    with ServerProcess(service_env, tmp_path) as server:
        answer = post_over_socket(server.port, b"x" * 20_000_000)

        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"connection: close" in head.lower()
        assert body.startswith(b'{"error":{"code":"VALIDATION_ERROR"')
        assert b'"limit":16384' in body
        # The server is none the worse for it.
        small = post_over_socket(server.port, b'{"username": "nobody", "password": "whatever"}')
        assert small.startswith(b"HTTP/1.1 401")
    assert '"level":"error"' not in server.log()
