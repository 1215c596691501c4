"""Errors as HTTP responses, ``{"error": {"code", "message", ...}}``, decided in one place.

Domain errors (app/core/errors.py) get their status and headers from ``DOMAIN_STATUS``;
``ApiError`` is for what only HTTP knows (a route that does not exist, a body too large).
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import orjson
from pydantic import BaseModel, ConfigDict
from quart import Quart, Response
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from app.core.board_reads import BoardNotFound, NotRanked, UserNotFound
from app.core.errors import (
    AccountBanned,
    AlreadyCompleted,
    CommitOutcomeUnknown,
    DatabaseUnavailable,
    DomainError,
    IdempotencyKeyReused,
    InvalidInput,
    MissingScope,
    RateLimited,
    ServerOnlyAction,
    TokenExpired,
    Unauthorized,
    UnknownAction,
    UsernameTaken,
    VerificationFailed,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error a client can act on: an HTTP status, a stable code and a human message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    def body(self) -> ErrorBody:
        return ErrorBody(error=ErrorDetail(code=self.code, message=self.message, **self.details))


class FieldProblem(BaseModel):
    field: str
    problem: str


class ErrorDetail(BaseModel):
    """What went wrong: a stable ``code``, a human ``message``, and fields that depend on the
    code (only those that apply are present)."""

    # Open: a field a new error adds reaches the client even before it is listed here.
    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    # INVALID_ACTION and ALREADY_COMPLETED
    actionId: str | None = None
    # ALREADY_COMPLETED: the original completion
    completedAt: str | None = None
    pointsEarned: int | None = None
    # RATE_LIMIT_EXCEEDED: seconds until a retry can succeed (also the Retry-After header)
    retryAfter: int | None = None
    # VALIDATION_ERROR and USERNAME_TAKEN: the field at fault, or every problem found
    field: str | None = None
    fields: list[FieldProblem] | None = None
    # VALIDATION_ERROR for a body that is too large: the limit in bytes
    limit: int | None = None
    # VERIFICATION_FAILED: why the proof did not hold (a stable code, docs/api.md), also
    # as {"reason": ...} in details
    reason: str | None = None
    details: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    """Every error: ``{"error": {"code", "message", ...}}``."""

    error: ErrorDetail


def validation_error(message: str, **details: Any) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message, details=details)


# Every domain error class, and the HTTP status it answers with.
DOMAIN_STATUS: dict[type[DomainError], int] = {
    Unauthorized: 401,
    TokenExpired: 401,
    InvalidInput: 400,
    UnknownAction: 400,
    AlreadyCompleted: 400,
    UsernameTaken: 409,
    RateLimited: 429,
    DatabaseUnavailable: 500,
    CommitOutcomeUnknown: 503,
    BoardNotFound: 404,
    NotRanked: 404,
    UserNotFound: 404,
    VerificationFailed: 400,
    ServerOnlyAction: 403,
    AccountBanned: 403,
    MissingScope: 403,
    IdempotencyKeyReused: 409,
}


def api_error_from(error: DomainError) -> ApiError:
    status = next(DOMAIN_STATUS[kind] for kind in type(error).__mro__ if kind in DOMAIN_STATUS)
    return ApiError(
        status, error.code, error.message, details=error.details, headers=_headers(error)
    )


def _headers(error: DomainError) -> dict[str, str]:
    if isinstance(error, TokenExpired):
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    if isinstance(error, Unauthorized):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(error, RateLimited):
        return {"Retry-After": str(error.retry_after_seconds)}
    return {}


def error_response(error: ApiError) -> Response:
    # Only the fields this error set: an absent field is absent, not null.
    body = orjson.dumps(error.body().model_dump(exclude_unset=True))
    response = Response(body, status=error.status, content_type="application/json")
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


_HTTP_CODES = {
    404: ("NOT_FOUND", "No such endpoint."),
    405: ("METHOD_NOT_ALLOWED", "This endpoint does not accept that method."),
    415: ("VALIDATION_ERROR", "The body must be JSON (Content-Type: application/json)."),
}


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(ApiError)
    async def _api_error(error: ApiError) -> Response:
        return error_response(error)

    @app.errorhandler(DomainError)
    async def _domain_error(error: DomainError) -> Response:
        return error_response(api_error_from(error))

    @app.errorhandler(RequestSchemaValidationError)
    async def _schema_error(error: RequestSchemaValidationError) -> Response:
        return error_response(_describe_validation(error.validation_error))

    @app.errorhandler(RequestEntityTooLarge)
    async def _too_large(_: RequestEntityTooLarge) -> Response:
        limit = app.config.get("MAX_CONTENT_LENGTH")
        # 413, and the connection ends: the rest of the body was never read, so nothing after
        # it on this connection could be parsed.
        return error_response(
            ApiError(
                413,
                "VALIDATION_ERROR",
                f"The request body is larger than {limit} bytes.",
                details={"limit": limit},
                headers={"Connection": "close"},
            )
        )

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code, message = _HTTP_CODES.get(
            status,
            ("VALIDATION_ERROR", "The request body must be a JSON object."),
        )
        if status >= 500:
            code, message = "INTERNAL_SERVER_ERROR", "Something went wrong; retry with backoff."
        headers = {}
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            # RFC 9110: a 405 lists the methods the resource does support.
            headers["Allow"] = ", ".join(sorted(error.valid_methods))
        return error_response(ApiError(status, code, message, headers=headers))

    @app.errorhandler(asyncpg.PostgresConnectionError)
    @app.errorhandler(asyncpg.InterfaceError)
    @app.errorhandler(ConnectionError)
    @app.errorhandler(TimeoutError)
    async def _database_unreachable(error: Exception) -> Response:
        # Nothing was applied (the commit is one statement); no automatic retry, per the spec.
        log.warning("request failed, database unreachable: %s", error)
        return error_response(
            ApiError(
                500,
                "INTERNAL_SERVER_ERROR",
                "The service cannot reach its database; nothing was changed. Retry with backoff.",
            )
        )

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        # The traceback goes to the log, never to the client.
        log.exception("unhandled error", exc_info=error)
        return error_response(
            ApiError(500, "INTERNAL_SERVER_ERROR", "Something went wrong; retry with backoff.")
        )


def _describe_validation(error: Exception) -> ApiError:
    errors = getattr(error, "errors", None)
    if callable(errors):
        problems = [
            {
                "field": ".".join(str(part) for part in item.get("loc", ())) or "body",
                "problem": item.get("msg", "invalid"),
            }
            for item in errors(include_url=False, include_context=False, include_input=False)
        ]
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        return validation_error(f"The request body is invalid: {summary}", fields=problems)
    return validation_error("The request body must be a JSON object.")
