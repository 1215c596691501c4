"""The OpenAPI document (``GET /openapi.json``): what quart-schema derives from each route's
models, plus what it cannot see from them: every error status an operation answers with (all
in the one error shape), bodies that are not JSON, and headers.

Route modules declare these with the decorators below, next to the handler they describe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from quart_schema.openapi import OpenAPIProvider
from werkzeug.routing import Rule

from app.http.errors import ErrorBody

F = TypeVar("F", bound=Callable[..., Any])

_RESPONSES = "_leaderboard_responses"
_PARAMETERS = "_leaderboard_parameters"
_COMPONENTS = "#/components/schemas/{model}"

# What each error status means, unless an operation says more precisely.
ERROR_MEANING = {
    400: "`VALIDATION_ERROR`: the body is not strict JSON, not an object, has a field of the "
    "wrong type or length, or is nested too deep; `fields` or `field` says what.",
    401: "`UNAUTHORIZED` (no token, a malformed, forged or revoked one, wrong credentials) or "
    "`TOKEN_EXPIRED`.",
    404: "`NOT_FOUND`.",
    409: "`USERNAME_TAKEN`: the name is in use (compared ignoring case).",
    413: "`VALIDATION_ERROR`: the body is larger than 16 KiB (`limit` is the limit in bytes); "
    "the server closes the connection.",
    415: "`VALIDATION_ERROR`: the body is not declared as JSON (`Content-Type: application/json`).",
    429: "`RATE_LIMIT_EXCEEDED`: too many requests; `retryAfter` and the `Retry-After` header "
    "say when to retry.",
    500: "`INTERNAL_SERVER_ERROR`: a server fault, or the database is unreachable; nothing was "
    "changed. Retry with backoff.",
}

_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": '`Bearer`, with `error="invalid_token"` when the token expired.',
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds until a retry can succeed.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def _responses(func: Callable[..., Any]) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] | None = getattr(func, _RESPONSES, None)
    if found is None:
        found = {}
        setattr(func, _RESPONSES, found)
    return found


def errors(*statuses: int | tuple[int, str]) -> Callable[[F], F]:
    """Document the error statuses an operation answers with, each a status (meaning from
    ``ERROR_MEANING``) or ``(status, meaning)``."""

    def decorator(func: F) -> F:
        for entry in statuses:
            status, meaning = entry if isinstance(entry, tuple) else (entry, ERROR_MEANING[entry])
            response: dict[str, Any] = {
                "description": meaning,
                "content": {"application/json": {"schema": {"$ref": _ref(ErrorBody)}}},
            }
            if status in _ERROR_HEADERS:
                response["headers"] = _ERROR_HEADERS[status]
            _responses(func)[status] = response
        return func

    return decorator


def raw_response(
    status: int,
    description: str,
    media_types: dict[str, dict[str, Any]] | None = None,
    headers: dict[str, dict[str, Any]] | None = None,
) -> Callable[[F], F]:
    """Document a response that is not a model: another media type (media type -> schema),
    or no body at all (``media_types=None``)."""

    def decorator(func: F) -> F:
        response: dict[str, Any] = {"description": description}
        if media_types:
            response["content"] = {kind: {"schema": s} for kind, s in media_types.items()}
        if headers:
            response["headers"] = headers
        _responses(func)[status] = response
        return func

    return decorator


def parameter(
    name: str,
    where: str,
    description: str,
    schema: dict[str, Any] | None = None,
    *,
    required: bool = False,
) -> Callable[[F], F]:
    """Document a parameter the operation reads (``where``: header, query or path); one of a
    path replaces what quart-schema derives from the URL rule."""

    def decorator(func: F) -> F:
        parameters: list[dict[str, Any]] = getattr(func, _PARAMETERS, [])
        parameters.append(
            {
                "name": name,
                "in": where,
                "required": required or where == "path",
                "description": description,
                "schema": schema or {"type": "string"},
            }
        )
        setattr(func, _PARAMETERS, parameters)
        return func

    return decorator


def _ref(model: type[Any]) -> str:
    return _COMPONENTS.format(model=model.__name__)


def _error_components() -> dict[str, Any]:
    schema = ErrorBody.model_json_schema(ref_template=_COMPONENTS, mode="serialization")
    definitions: dict[str, Any] = schema.pop("$defs", {})
    return {**definitions, ErrorBody.__name__: schema}


class ApiDocument(OpenAPIProvider):
    """quart-schema's document, completed with what the decorators above declare."""

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        func = self._app.view_functions[rule.endpoint]
        responses: dict[int, dict[str, Any]] = getattr(func, _RESPONSES, {})
        parameters: list[dict[str, Any]] = getattr(func, _PARAMETERS, [])
        if responses:
            components.update(_error_components())
        for operations in paths.values():
            for method, operation in operations.items():
                # A copy each: quart-schema shares one operation object between a rule's methods.
                operations[method] = _complete(operation, responses, parameters)
        return paths, components


def _complete(
    operation: dict[str, Any],
    responses: dict[int, dict[str, Any]],
    parameters: list[dict[str, Any]],
) -> dict[str, Any]:
    merged = {int(status): dict(body) for status, body in operation["responses"].items()}
    for body in merged.values():
        body["description"] = body.get("description") or "Success."
    merged.update(responses)
    ours = {(p["name"], p["in"]) for p in parameters}
    completed = {
        **operation,
        "parameters": [
            *(p for p in operation["parameters"] if (p["name"], p["in"]) not in ours),
            *parameters,
        ],
        "responses": {str(status): merged[status] for status in sorted(merged)},
    }
    if "requestBody" in operation:
        # Every body this API reads is required; quart-schema does not say so.
        completed["requestBody"] = {**operation["requestBody"], "required": True}
    return completed
