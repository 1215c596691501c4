"""HTTP load: an open-loop generator on raw keep-alive connections, and closed-loop runs (wrk
when installed, else the same connections in a closed loop).

Open loop: request i is due at ``start + i / rate`` whether or not earlier ones have answered;
its latency is measured from that scheduled time, so a stall in the server (or a queue of
requests waiting for a free connection) shows up in the figures instead of being hidden by a
generator that politely waits (coordinated omission). The service time (from the actual write)
and the generator's dispatch lag are reported beside it.
"""

from __future__ import annotations

import asyncio
import json
import math
import resource
import shutil
import subprocess
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from perf.stats import Summary, percentile, summarize

HOST = "127.0.0.1"
WRK_SCRIPT = Path(__file__).with_name("wrk_report.lua")
perf_counter = time.perf_counter
TICK = 0.001  # the open-loop schedule's granularity: uvloop's timer resolution


def get_request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


def post_json(path: str, body: bytes, token: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


Done = Callable[["HttpConn", int, bytes], None]


class HttpConn(asyncio.Protocol):
    """One keep-alive connection, one request at a time; calls ``done(conn, status, body)``."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.done: Done | None = None
        self.scheduled = 0.0
        self.sent = 0.0
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: bytes, done: Done, scheduled: float) -> None:
        self.done, self.scheduled = done, scheduled
        self.sent = perf_counter()
        assert self.transport is not None
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            at = buf.find(b"content-length:", 0, end)
            if at < 0:
                at = buf.lower().find(b"content-length:", 0, end)
            length = 0
            if at >= 0:
                stop = buf.find(b"\r\n", at, end + 2)
                length = int(buf[at + 15 : stop])
            total = end + 4 + length
            if len(buf) < total:
                break
            status = int(buf[9:12])
            body = buf[end + 4 : total]
            buf = buf[total:]
            done, self.done = self.done, None
            if done is not None:
                done(self, status, body)
        self.buf = buf

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        done, self.done = self.done, None
        if done is not None:
            done(self, 0, b"")


async def open_connections(port: int, count: int, parallel: int = 200) -> list[HttpConn]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(parallel)

    async def one() -> HttpConn:
        async with gate:
            _, protocol = await loop.create_connection(HttpConn, HOST, port)
            return protocol

    return list(await asyncio.gather(*(one() for _ in range(count))))


def close_connections(conns: Sequence[HttpConn]) -> None:
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()


@dataclass
class OpenLoopResult:
    latencies: list[float] = field(default_factory=list)  # ms from the scheduled send time
    service: list[float] = field(default_factory=list)  # ms from the actual write
    lag: list[float] = field(default_factory=list)  # ms from scheduled to written
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    cpu_share: float = 0.0  # this process's CPU time / wall time (1.0 = one core)

    def summary(self, name: str, rate: float, ok: Callable[[int], bool]) -> Summary:
        errors = sum(n for status, n in self.statuses.items() if not ok(status))
        result = summarize(name, self.latencies, self.seconds, errors, rate)
        service, lag = sorted(self.service), sorted(self.lag)
        result.extra = {
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "service_p50": round(percentile(service, 50), 3),
            "service_p95": round(percentile(service, 95), 3),
            "dispatch_lag_p50": round(percentile(lag, 50), 3),
            "dispatch_lag_p99": round(percentile(lag, 99), 3),
            "loadgen_cpu_share": round(self.cpu_share, 3),
        }
        return result


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def open_loop(
    conns: Sequence[HttpConn],
    request: Callable[[int], bytes],
    rate: float,
    seconds: float,
    on_response: Callable[[int, int, bytes], None] | None = None,
    drain_seconds: float = 10.0,
) -> OpenLoopResult:
    """Send ``rate * seconds`` requests on a fixed schedule over ``conns`` (each request goes
    to the connection idle longest; with none idle it waits, its clock already running)."""
    result = OpenLoopResult()
    total = max(1, int(rate * seconds))
    # A connection still busy with an earlier step's unanswered request is left out.
    idle: deque[HttpConn] = deque(c for c in conns if not c.lost.done() and c.done is None)
    backlog: deque[tuple[int, float]] = deque()
    finished = asyncio.get_running_loop().create_future()
    answered = 0
    indices: dict[HttpConn, int] = {}

    def done(conn: HttpConn, status: int, body: bytes) -> None:
        nonlocal answered
        now = perf_counter()
        result.latencies.append((now - conn.scheduled) * 1000)
        result.service.append((now - conn.sent) * 1000)
        result.lag.append((conn.sent - conn.scheduled) * 1000)
        result.statuses[status] += 1
        if on_response is not None:
            on_response(indices[conn], status, body)
        answered += 1
        if answered >= total and not finished.done():
            finished.set_result(None)
        if status == 0:
            return  # the connection is gone; it takes no more work
        if backlog:
            index, scheduled = backlog.popleft()
            indices[conn] = index
            conn.send(request(index), done, scheduled)
        else:
            idle.append(conn)

    cpu0 = cpu_seconds()
    start = perf_counter() + 0.01
    sent = 0
    while sent < total:
        # uvloop's timers tick in whole milliseconds (a shorter sleep returns at once and the
        # loop would spin, stealing a core from the server), so the schedule is released in
        # 1 ms batches: request i is due at the first tick at or after start + i / rate.
        # Its clock runs from that tick; a late wake-up shows as dispatch lag and latency.
        ticks = math.floor((perf_counter() - start) / TICK)
        due = min(total, max(0, math.floor(ticks * TICK * rate + 1e-9) + 1))
        while sent < due:
            scheduled = start + math.ceil(sent / rate / TICK - 1e-9) * TICK
            if idle:
                conn = idle.popleft()
                indices[conn] = sent
                conn.send(request(sent), done, scheduled)
            else:
                backlog.append((sent, scheduled))
            sent += 1
        await asyncio.sleep(max(start + (ticks + 1) * TICK - perf_counter(), TICK))
    try:
        await asyncio.wait_for(finished, drain_seconds)
    except TimeoutError:
        result.statuses[-1] += total - answered  # never answered within the drain time
    result.seconds = perf_counter() - start
    result.cpu_share = (cpu_seconds() - cpu0) / result.seconds
    return result


async def closed_loop_python(
    conns: Sequence[HttpConn], request: bytes, seconds: float
) -> OpenLoopResult:
    """Each connection sends its next request as soon as the previous one is answered."""
    result = OpenLoopResult()
    stop_at = perf_counter() + seconds

    def done(conn: HttpConn, status: int, body: bytes) -> None:
        now = perf_counter()
        result.latencies.append((now - conn.sent) * 1000)
        result.statuses[status] += 1
        if status and now < stop_at:
            conn.send(request, done, now)

    cpu0, start = cpu_seconds(), perf_counter()
    for conn in conns:
        conn.send(request, done, start)
    await asyncio.sleep(seconds + 0.5)
    result.seconds = perf_counter() - start
    result.cpu_share = (cpu_seconds() - cpu0) / result.seconds
    return result


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(url: str, connections: int, seconds: int, threads: int = 2) -> Summary:
    """Closed loop with wrk (C, event-driven): figures plus wrk's own CPU share."""
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = perf_counter()
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", str(WRK_SCRIPT), url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    )
    wall = perf_counter() - wall0
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    line = next(x for x in done.stdout.splitlines() if x.startswith("PERFJSON "))
    data = json.loads(line[len("PERFJSON ") :])
    us = data["percentiles"]
    summary = Summary(
        name="wrk",
        count=data["requests"],
        errors=data["errors"],
        seconds=data["seconds"],
        throughput=data["requests"] / data["seconds"],
        p50=us["50"] / 1000,
        p95=us["95"] / 1000,
        p99=us["99"] / 1000,
        max=data["max"] / 1000,
        curve=[(float(p), v / 1000) for p, v in sorted(us.items(), key=lambda kv: float(kv[0]))],
    )
    summary.extra = {"loadgen": "wrk", "loadgen_cpu_share": round(cpu / wall, 3)}
    return summary
