"""Structured logs: one JSON object per line on stderr, with the request id of the request
that logged it. Secrets never reach a line: bearer tokens, JWTs, ``token=`` query values and
passwords in URLs or ``password=`` pairs are masked in every message, whoever logs it."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_SECRETS = [
    # Authorization: Bearer <token>
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[REDACTED]"),
    # A JWT anywhere (three base64url parts, the first a JSON header).
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[REDACTED-JWT]"),
    # token=..., refreshToken=..., password=..., secret=... in queries, forms and messages.
    (
        re.compile(
            r"(?i)((?:access_?|refresh_?)?token|password|secret|passwd)([\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+"
        ),
        r"\1\2[REDACTED]",
    ),
    # scheme://user:password@host
    (re.compile(r"(\w+://[^:/@\s]+:)[^@\s]+@"), r"\1[REDACTED]@"),
    # Authorization: ApiKey <key>, and a game server's API key anywhere (app/core/awards.py).
    (re.compile(r"(?i)(apikey\s+)\S+"), r"\1[REDACTED]"),
    (re.compile(r"lbk_[A-Za-z0-9_-]+"), "[REDACTED-KEY]"),
]
# Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


# Every pattern above needs one of these; most lines (access lines) contain none, and one
# search is far cheaper than four substitutions run twice per record.
_MAYBE_SECRET = re.compile(r"(?i)bearer|eyJ|token|passw|secret|://|apikey|lbk_")


def redact(text: str) -> str:
    if _MAYBE_SECRET.search(text) is None:
        return text
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        rid = request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return redact(orjson.dumps(entry, default=str).decode())


class TextFormatter(logging.Formatter):
    """For a developer's terminal (development mode); masks secrets the same way."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(*, json: bool = True, level: int = logging.INFO) -> None:
    """Send every logger (ours, Hypercorn's, libraries') through one formatter: JSON lines
    for production, plain text in development mode."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("hypercorn.error", "hypercorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
