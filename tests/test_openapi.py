"""The OpenAPI document describes the API exactly: every status an operation answers with, the
rules a request body must follow, and a 405 that names the methods a resource does take.
(tests/fuzz_api.py checks the same against a running server with schemathesis, in CI.)"""

from __future__ import annotations

import re
from typing import Any

import pytest

# Every operation, and every status it can answer with.
STATUSES = {
    ("post", "/api/auth/register"): {201, 400, 409, 413, 415, 500},
    ("post", "/api/auth/login"): {200, 400, 401, 403, 413, 415, 429, 500},
    ("post", "/api/auth/refresh"): {200, 400, 401, 403, 413, 415, 500},
    ("post", "/api/action/complete"): {200, 400, 401, 403, 413, 415, 429, 500, 503},
    ("get", "/api/actions"): {200},
    ("get", "/api/me"): {200, 401, 403, 500},
    ("get", "/api/leaderboard"): {200, 304, 400, 401, 403, 404, 500},
    ("get", "/api/boards"): {200},
    ("get", "/api/boards/{boardId}/periods"): {200, 400, 404, 500},
    ("get", "/api/users/{userId}"): {200, 400, 404, 500},
    ("get", "/healthz"): {200},
    ("get", "/readyz"): {200, 503},
    ("get", "/metrics"): {200},
    ("get", "/"): {200},
    ("get", "/static/{name}"): {200, 404},
    ("post", "/api/auth/logout"): {204, 400, 413, 415, 500},
    ("post", "/api/auth/logout-all"): {204, 401, 403, 500},
    ("post", "/api/server/awards"): {200, 400, 401, 403, 404, 409, 413, 415, 429, 500},
}
ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorBody"}


@pytest.fixture
async def document(client) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    found: dict[str, Any] = await response.get_json()
    return found


async def test_every_operation_documents_every_status_it_answers_with(document) -> None:
    operations = {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert set(operations) == set(STATUSES)
    for key, operation in operations.items():
        assert {int(s) for s in operation["responses"]} == STATUSES[key], key
        for status, response in operation["responses"].items():
            assert response["description"], (key, status)
            if int(status) >= 400 and key != ("get", "/readyz"):
                assert response["content"]["application/json"]["schema"] == ERROR_SCHEMA


async def test_error_responses_document_their_headers(document) -> None:
    complete = document["paths"]["/api/action/complete"]["post"]["responses"]
    assert complete["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert complete["429"]["headers"]["Retry-After"]["required"] is True
    error = document["components"]["schemas"]["ErrorDetail"]
    assert {"code", "message"} <= set(error["required"])
    assert {"retryAfter", "fields", "limit", "completedAt"} <= set(error["properties"])


async def test_request_schemas_state_exactly_what_the_api_accepts(document) -> None:
    def body(path: str) -> dict[str, Any]:
        request = document["paths"][path]["post"]["requestBody"]
        assert request["required"] is True
        schema: dict[str, Any] = request["content"]["application/json"]["schema"]
        return schema["properties"]

    register = body("/api/auth/register")
    assert register["username"]["pattern"] == "^[A-Za-z0-9_.-]{3,50}$"
    assert (register["password"]["minLength"], register["password"]["maxLength"]) == (8, 128)
    login = body("/api/auth/login")
    assert "minLength" not in login["username"] and login["username"]["maxLength"] == 50
    assert login["password"]["maxLength"] == 128
    for field in (register["password"], login["username"], login["password"]):
        assert re.fullmatch(field["pattern"], "any text") is not None
        assert re.fullmatch(field["pattern"], "a\x00b") is None


@pytest.mark.parametrize(
    ("body", "status"),
    [
        # What the document says is valid is accepted ...
        ({"username": "a.b-c_9", "password": "12345678"}, 201),
        ({"username": "x" * 50, "password": "p" * 128}, 201),
        # ... and what it says is invalid is refused, by the same rule.
        ({"username": "ab", "password": "12345678"}, 400),
        ({"username": "abc\n", "password": "12345678"}, 400),
        ({"username": "abc", "password": "1234567"}, 400),
        ({"username": "abc", "password": "p" * 129}, 400),
    ],
)
async def test_registration_follows_its_documented_schema(client, body, status) -> None:
    response = await client.post("/api/auth/register", json=body)
    assert response.status_code == status, await response.get_json()


async def test_login_takes_any_name_and_password_within_the_limits(client) -> None:
    for body in ({"username": "", "password": ""}, {"username": "no such name!", "password": "x"}):
        response = await client.post("/api/auth/login", json=body)
        assert response.status_code == 401, body


async def test_every_405_lists_the_allowed_methods(app, client) -> None:
    rules = [r for r in app.app.url_map.iter_rules() if not r.websocket]
    assert len(rules) >= 12
    for rule in rules:
        path = rule.rule.replace("<name>", "app.js")
        method = next(m for m in ("DELETE", "PATCH", "PUT", "POST") if m not in rule.methods)
        response = await client.open(path, method=method)
        assert response.status_code == 405, path
        assert response.headers["Allow"] == ", ".join(sorted(rule.methods)), path
        assert (await response.get_json())["error"]["code"] == "METHOD_NOT_ALLOWED"
