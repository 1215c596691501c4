"""``POST /api/action/complete`` answered by the front dispatcher, without Quart and Hypercorn.

A completion's own work is three round trips (gate, commit, apply); through Quart, Hypercorn
and quart-schema a worker spent ~45 % of its CPU around them (perf/README.md). Here the request
is parsed by h11 (the parser Hypercorn itself uses, configured as Hypercorn configures it, so
the two cannot disagree on where a request ends), authenticated and completed by the same
functions as the Quart route (app/http/complete_flow.py), its body validated by the same model
and its errors rendered from the same table (app/http/errors.py), with the same request id,
metrics and access log as app/http/ops.py gives a Quart request.

Only the plain form is answered here: HTTP/1.1, the exact target (no query), one ``Host``,
a ``Content-Length`` within the body limit, no ``Transfer-Encoding``, ``Expect``, ``Upgrade``
or ``Connection: close``, at most one of each header the route reads. Anything else goes to
Hypercorn byte for byte, and tests/test_front_differential.py sends both paths the same
requests (good, bad, malformed, every error) and requires the same answers.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

import asyncpg
import h11
import orjson
from quart_schema import RequestSchemaValidationError
from quart_schema.conversion import model_load
from werkzeug.http import parse_options_header

from app.core.errors import DomainError
from app.http import complete_flow
from app.http.api_scores import CompleteRequest, CompleteResponse
from app.http.errors import ApiError, _describe_validation, api_error_from
from app.http.json_body import decode_body, encode
from app.http.services import Services
from app.obs.logging_setup import request_id

REQUEST_START = b"POST /api/action/complete HTTP/1.1\r\n"
ROUTE = "/api/action/complete"
_TARGET = ROUTE.encode()
# Hypercorn's h11 limit on an incomplete head (hypercorn.config.Config.h11_max_incomplete_size).
H11_MAX_INCOMPLETE = 16 * 1024
# Any of these means the request is not the plain form: Hypercorn and Quart answer it.
_HAND_OVER = {b"transfer-encoding", b"expect", b"upgrade"}
# Read by the route: two of one would leave "which one" to a framework detail, so Quart decides.
_ONCE = {b"authorization", b"content-type", b"x-request-id", b"content-length", b"host"}
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # app/http/ops.py's rule

access_log = logging.getLogger("leaderboard.access")  # app/http/ops.py's logger
log = logging.getLogger("app.http.errors")  # where Quart's error handlers log


@dataclass(frozen=True)
class Plain:
    """A complete request in the plain form, as read from the front of a buffer."""

    authorization: str | None
    content_type: str | None
    given_request_id: str
    body: bytes
    consumed: int  # bytes of the buffer it took


NEED_MORE = "need more"  # the head is not all here yet; wait for more bytes


@dataclass(frozen=True)
class BodyPending:
    """The head is here and plain, the body not all of it: wait for it only if the route
    would (see CompleteResponder.may_wait)."""

    authorization: str | None


def read_plain(buffer: bytes, max_body: int) -> Plain | BodyPending | str | None:
    """The plain completion at the start of ``buffer``; NEED_MORE or BodyPending while it is
    incomplete;
    None when Hypercorn should read it (not plain, or not valid HTTP: h11 in Hypercorn will
    say why, exactly as h11 here would have)."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=H11_MAX_INCOMPLETE)
    conn.receive_data(buffer)
    try:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            return NEED_MORE
        if not isinstance(event, h11.Request):
            return None
        if event.http_version != b"1.1" or event.target != _TARGET or event.method != b"POST":
            return None
        seen: dict[bytes, bytes] = {}
        for name, value in event.headers:
            if name in _HAND_OVER:
                return None
            if name == b"connection" and b"close" in value.lower():
                return None
            if name in _ONCE:
                if name in seen:
                    return None
                seen[name] = value
        length = seen.get(b"content-length")
        if length is None or b"host" not in seen or int(length) > max_body:
            return None
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                authorization = seen.get(b"authorization")
                return BodyPending(
                    None if authorization is None else authorization.decode("latin1")
                )
            if isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                return None
    except h11.RemoteProtocolError:
        return None
    authorization = seen.get(b"authorization")
    content_type = seen.get(b"content-type")
    # Quart reads header values as latin-1 (quart/asgi.py).
    return Plain(
        authorization=None if authorization is None else authorization.decode("latin1"),
        content_type=None if content_type is None else content_type.decode("latin1"),
        given_request_id=seen.get(b"x-request-id", b"").decode("latin1"),
        body=body,
        consumed=len(buffer) - len(conn.trailing_data[0]),
    )


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    code: str = ""  # the error code, for the metrics


class CompleteResponder:
    """Answers plain completions; the front calls ``read`` then awaits ``answer``."""

    def __init__(self, svc: Services, config: dict[str, Any]) -> None:
        self._svc = svc
        self._max_body = svc.settings.max_body_bytes
        self._decamelize = bool(config.get("QUART_SCHEMA_CONVERT_CASING", False))
        self._preference = config.get("QUART_SCHEMA_CONVERSION_PREFERENCE")
        metrics = svc.metrics
        self._seconds = metrics.request_seconds.labels("POST", ROUTE)
        self._requests = metrics.requests
        self._errors = metrics.errors
        self._rate_limited = metrics.rate_limited.labels(ROUTE)
        self._second = -1
        self._date = b""

    def read(self, buffer: bytes) -> Plain | BodyPending | str | None:
        return read_plain(buffer, self._max_body)

    def may_wait(self, pending: BodyPending) -> bool:
        """Whether to wait here for the rest of the body. The Quart route authenticates
        before it reads the body: a request it refuses is answered at once, and Hypercorn
        then ends the connection, the body unread. Such a request goes to Hypercorn, which
        does exactly that; one that passes waits here for its body, as it would there."""
        try:
            complete_flow.identify_now(self._svc, pending.authorization)
        except DomainError:
            return False
        return True

    async def answer(self, plain: Plain) -> bytes:
        """The complete response (status line, headers, body) to ``plain``."""
        started = time.perf_counter()
        given = plain.given_request_id
        rid = given if _SANE_ID.match(given) else uuid.uuid4().hex
        request_id.set(rid)  # this request's own task: its log lines carry its id
        try:
            answer = await self._work(plain)
        except Exception as error:
            answer = self._error(error)
        elapsed = time.perf_counter() - started
        self._seconds.observe(elapsed)
        self._requests.labels("POST", ROUTE, str(answer.status)).inc()
        if answer.status >= 400:
            self._errors.labels(ROUTE, answer.code).inc()
            if answer.status == 429:
                self._rate_limited.inc()
        access_log.info(
            "%s %s %d",
            "POST",
            ROUTE,
            answer.status,
            extra={"status": answer.status, "duration_ms": round(elapsed * 1000, 2)},
        )
        return self._render(answer, rid)

    async def _work(self, plain: Plain) -> Answer:
        # The route's order: authenticate first (requires_identity), then the body
        # (validate_request: 415, then JSON, then the model), then the work.
        identity = await complete_flow.identify(self._svc, plain.authorization)
        if not _is_json(plain.content_type):
            raise ApiError(
                415, "VALIDATION_ERROR", "The body must be JSON (Content-Type: application/json)."
            )
        data = model_load(
            decode_body(plain.body),
            CompleteRequest,
            RequestSchemaValidationError,
            decamelize=self._decamelize,
            preference=self._preference,
        )
        completion = await complete_flow.complete(self._svc, identity, data.actionId, data.data)
        return Answer(200, encode(CompleteResponse.of(completion).model_dump()))

    def _error(self, error: Exception) -> Answer:
        """As app/http/errors.py's handlers answer it (the most specific handler wins)."""
        if isinstance(error, ApiError):
            api = error
        elif isinstance(error, DomainError):
            api = api_error_from(error)
        elif isinstance(error, RequestSchemaValidationError):
            api = _describe_validation(error.validation_error)
        elif isinstance(
            error,
            asyncpg.PostgresConnectionError | asyncpg.InterfaceError | ConnectionError,
        ) or isinstance(error, TimeoutError):
            log.warning("request failed, database unreachable: %s", error)
            api = ApiError(
                500,
                "INTERNAL_SERVER_ERROR",
                "The service cannot reach its database; nothing was changed. Retry with backoff.",
            )
        else:
            log.exception("unhandled error", exc_info=error)
            api = ApiError(
                500, "INTERNAL_SERVER_ERROR", "Something went wrong; retry with backoff."
            )
        body = orjson.dumps(api.body().model_dump(exclude_unset=True))
        return Answer(api.status, body, tuple(api.headers.items()), api.code)

    def _render(self, answer: Answer, rid: str) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._date = formatdate(now, usegmt=True).encode()
        head = [
            b"HTTP/1.1 %d \r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            % (answer.status, len(answer.body))
        ]
        for name, value in answer.headers:
            head.append(b"%s: %s\r\n" % (name.lower().encode(), value.encode("latin1")))
        head.append(b"x-request-id: %s\r\n" % rid.encode())
        head.append(b"date: %s\r\nserver: hypercorn-h11\r\n\r\n" % self._date)
        return b"".join(head) + answer.body


def _is_json(content_type: str | None) -> bool:
    """werkzeug's ``Request.is_json``, which Quart's ``get_json`` asks."""
    mimetype = parse_options_header(content_type)[0].lower() if content_type else ""
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )
