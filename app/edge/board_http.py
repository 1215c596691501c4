"""``GET /api/leaderboard`` answered by the front dispatcher, from bytes built once per change.

The board is the hottest route and the same for everyone: through Quart and Hypercorn a read
cost ~200 µs of Python per request (routing, request and response objects, h11); here it is
a lookup and one write. Only the plain form is answered here (HTTP/1.1, no body, no query,
no ``X-Request-ID``, no ``Connection: close``) and only while this node holds a board;
anything else goes to Quart, which gives the same answer (tests/test_board_http.py).

"Plain" is strict: a head is answered here only when every line ends in CRLF and matches the
RFC 9112 grammar without its obsolete forms (no line folding, no bytes outside visible ASCII,
space and tab), with exactly one ``Host``. Such a head is read the same way by any parser,
Hypercorn's h11 included, so the two can never disagree on where a request ends (the seed of
request smuggling) or on whether it is valid: everything else goes to Hypercorn, which
decides (tests/test_front_differential.py sends both the same bytes).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from email.utils import formatdate

from app.core.board import Board, Snapshot
from app.obs.metrics import Metrics

REQUEST_LINE = b"GET /api/leaderboard HTTP/1.1"
ROUTE = "/api/leaderboard"
# Longer heads are not the plain read (Hypercorn's own limit is 16 KiB): Hypercorn answers.
MAX_HEAD_BYTES = 8192
# Any of these means the request is not the plain read: Quart answers it.
_HAND_OVER = {b"content-length", b"transfer-encoding", b"expect", b"upgrade", b"x-request-id"}
# A header line is a token, a colon, then visible ASCII, spaces and tabs: any such run is
# "OWS field-value OWS" (RFC 9110 §5.5), and matching it as one run is 5x cheaper.
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PLAIN_HEAD = re.compile(
    re.escape(REQUEST_LINE) + rb"\r\n(?:" + _TOKEN + rb":[\t\x20-\x7e]*\r\n)*\r\n"
)
_HEADERS_START = len(REQUEST_LINE) + 2


Served = Callable[[int, float], None]  # (status, seconds spent answering)


class BoardResponder:
    def __init__(self, board: Board, served: Served | None = None) -> None:
        self._board = board
        self._served = served
        self._snapshot: Snapshot | None = None
        self._ok = b""  # status line and headers up to the per-response ones
        self._not_modified = b""
        self._body = b""
        self._etag = b""
        self._second = -1
        self._date = b""

    def answer(self, head: bytes) -> bytes | None:
        """The complete response to ``head`` (request line, headers and the blank line that
        ends them), or None when Hypercorn and Quart should answer it."""
        started = time.perf_counter()
        snapshot = self._board.current
        if snapshot is None:
            return None  # cold node: Quart's path reads Redis or PostgreSQL
        if len(head) > MAX_HEAD_BYTES or _PLAIN_HEAD.fullmatch(head) is None:
            return None
        if_none_match = None
        hosts = 0
        for line in head[_HEADERS_START:-4].split(b"\r\n"):
            name, _, value = line.partition(b":")
            name = name.lower()
            if name == b"host":
                hosts += 1
            elif name in _HAND_OVER:
                if name == b"content-length" and value.strip(b" \t") == b"0":
                    continue
                return None
            elif name == b"connection" and b"close" in value.lower():
                return None
            elif name == b"if-none-match" and if_none_match is None:
                if_none_match = value.strip(b" \t")  # the first, as Quart reads it
        if hosts != 1:
            return None  # h11 refuses the request: Hypercorn says why
        if snapshot is not self._snapshot:
            self._prepare(snapshot)
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._date = formatdate(now, usegmt=True).encode()
        tail = (
            b"date: "
            + self._date
            + b"\r\nx-request-id: "
            + os.urandom(16).hex().encode()
            + b"\r\n\r\n"
        )
        if if_none_match == self._etag:
            response, status = self._not_modified + tail, 304
        else:
            response, status = self._ok + tail + self._body, 200
        if self._served is not None:
            self._served(status, time.perf_counter() - started)
        return response

    def _prepare(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._body = snapshot.body
        self._etag = snapshot.etag.encode()
        common = (
            b"etag: " + self._etag + b"\r\ncache-control: no-cache\r\nserver: hypercorn-h11\r\n"
        )
        self._ok = (
            b"HTTP/1.1 200 \r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(self._body)).encode() + b"\r\n" + common
        )
        # As app/api_board.py sends it through Quart: no body, so no content type.
        self._not_modified = b"HTTP/1.1 304 \r\ncontent-length: 0\r\n" + common


def served_metrics(metrics: Metrics) -> Served:
    """Count a read answered here as ops_api counts one answered by Quart."""
    seconds = metrics.request_seconds.labels("GET", ROUTE)
    by_status = {s: metrics.requests.labels("GET", ROUTE, str(s)) for s in (200, 304)}

    def served(status: int, elapsed: float) -> None:
        seconds.observe(elapsed)
        by_status[status].inc()

    return served
