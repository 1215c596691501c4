"""The operator's endpoints and the per-request bookkeeping behind them.

``GET /healthz`` (liveness), ``GET /metrics`` (Prometheus text), ``GET /readyz`` (503 with
reasons when this node cannot serve). Every HTTP request gets a request id (the caller's
``X-Request-ID`` when it is sane, else a new one), echoed in the response and attached to
every log line it causes, and is timed and counted by route template (never the raw path: ids
in paths would explode the series). The access log records the path without its query
string, which may carry a token.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Literal

import orjson
from pydantic import BaseModel, Field
from quart import Quart, Response, g, request
from quart_schema import document_response, tag, validate_response

from app.http.health import Readiness, readiness
from app.http.json_body import encode
from app.http.openapi import raw_response
from app.http.request import services
from app.obs.logging_setup import request_id
from app.obs.metrics import CONTENT_TYPE

log = logging.getLogger("leaderboard.access")

_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Polled constantly by balancers and Prometheus: counted, but not access-logged.
_QUIET = {"/healthz", "/readyz", "/metrics"}
# Polled by every client not on the WebSocket: one JSON log line per read cost ~16 % of a
# worker's CPU under read load (perf/README.md). Counted in metrics; failures still logged.
_QUIET_WHEN_OK = {"/api/leaderboard"}


def install(app: Quart) -> None:
    app.before_request(_begin)
    app.after_request(_finish)
    app.add_url_rule("/healthz", "healthz", healthz, methods=["GET"])
    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])
    app.add_url_rule("/readyz", "readyz", readyz, methods=["GET"])


class HealthResponse(BaseModel):
    """The process runs."""

    status: Literal["ok"]


class ReadyzResponse(BaseModel):
    """Whether this node can serve, and each check: `ok` or what is wrong."""

    status: Literal["ready", "unavailable"]
    checks: dict[str, str] = Field(examples=[{"postgres": "ok", "migrations": "ok", "redis": "ok"}])

    @classmethod
    def of(cls, state: Readiness) -> ReadyzResponse:
        return cls(status="ready" if state.ready else "unavailable", checks=state.checks)


# Built once from the model: the benchmarks use this route as Quart's constant-response
# ceiling (perf/README.md), so it does no per-request work.
_HEALTHY = encode(HealthResponse(status="ok").model_dump())


@tag(["operations"])
@document_response(HealthResponse)
async def healthz() -> Response:
    """Liveness: asks nothing of PostgreSQL or Redis, so an outage never restarts a process."""
    return Response(_HEALTHY, content_type="application/json")


@tag(["operations"])
@raw_response(
    200,
    "Prometheus text exposition.",
    {CONTENT_TYPE.split(";")[0]: {"type": "string"}},
)
async def metrics() -> Response:
    """Metrics for Prometheus (nginx does not expose this path)."""
    return Response(services().metrics.exposition(), content_type=CONTENT_TYPE)


@tag(["operations"])
@validate_response(ReadyzResponse, 200)
@validate_response(ReadyzResponse, 503)
async def readyz() -> tuple[ReadyzResponse, int]:
    """Readiness: 200 when PostgreSQL (with the current schema) and Redis answer, else 503."""
    found = services()
    state = await readiness(found.pool, found.redis)
    return ReadyzResponse.of(state), 200 if state.ready else 503


async def _begin() -> None:
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _SANE_ID.match(given) else uuid.uuid4().hex
    g.request_started = time.perf_counter()
    request_id.set(g.request_id)


async def _finish(response: Response) -> Response:
    started = getattr(g, "request_started", None)
    if started is None:
        return response
    elapsed = time.perf_counter() - started
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    metrics = services().metrics
    metrics.request_seconds.labels(request.method, route).observe(elapsed)
    metrics.requests.labels(request.method, route, str(response.status_code)).inc()
    if response.status_code >= 400:
        code = await _error_code(response)
        metrics.errors.labels(route, code).inc()
        if response.status_code == 429:
            metrics.rate_limited.labels(route).inc()
    response.headers["X-Request-ID"] = g.request_id
    quiet = request.path in _QUIET or (
        request.path in _QUIET_WHEN_OK and response.status_code < 400
    )
    if not quiet:
        log.info(
            "%s %s %d",
            request.method,
            request.path,
            response.status_code,
            extra={"status": response.status_code, "duration_ms": round(elapsed * 1000, 2)},
        )
    return response


async def _error_code(response: Response) -> str:
    """The stable ``error.code`` of an error body (app/errors.py), else ``HTTP_<status>``."""
    if response.mimetype == "application/json":
        try:
            body = orjson.loads(await response.get_data())
            return str(body["error"]["code"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            pass
    return f"HTTP_{response.status_code}"
