"""N worker processes serving one listening socket, kept alive the way production process
managers do it (gunicorn, Hypercorn's own supervisor).

- A worker that dies is started again, after a back-off that doubles while it keeps dying
  soon after starting (0.5 s up to 30 s) and resets once a worker has lived a while: one
  crash costs half a second of half capacity, a crash loop does not spin the CPU.
- SIGTERM or SIGINT stops every worker (SIGTERM: close live sockets with 1001, finish
  requests in flight) and the supervisor exits 0 once they all have.
- No worker outlives the supervisor: a worker asks the kernel for SIGTERM when its parent
  dies (``die_with_parent``) and also watches its parent pid (``parent_alive``), so a
  SIGKILLed supervisor never leaves workers holding the port.

Workers are told to stop with a signal rather than a shared ``multiprocessing.Event``: the
event's lock would stay held forever by a worker killed while checking it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger(__name__)

RESTART_FIRST_SECONDS = 0.5
RESTART_MAX_SECONDS = 30.0
# A worker that lived this long was not crash-looping: its successor starts after the
# shortest delay again.
STABLE_SECONDS = 30.0
_PR_SET_PDEATHSIG = 1


@dataclass
class Backoff:
    """Delays between restarts of one worker slot."""

    first: float = RESTART_FIRST_SECONDS
    cap: float = RESTART_MAX_SECONDS
    stable_after: float = STABLE_SECONDS
    _next: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._next = self.first

    def delay_after(self, lived: float) -> float:
        """How long to wait before replacing a worker that died after ``lived`` seconds."""
        if lived >= self.stable_after:
            self._next = self.first
        delay = self._next
        self._next = min(self.cap, delay * 2)
        return delay


@dataclass
class _Slot:
    index: int
    backoff: Backoff
    process: BaseProcess | None = None
    started_at: float = 0.0
    restart_at: float = 0.0  # when ``process`` is None: when to start the next one


Spawn = Callable[[int], BaseProcess]  # slot index -> an unstarted worker process


class Supervisor:
    def __init__(
        self,
        spawn: Spawn,
        workers: int,
        grace: float,
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        self._spawn = spawn
        self._grace = grace
        self._slots = [_Slot(i, backoff()) for i in range(workers)]
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; 0 when every worker then stopped cleanly."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for slot in self._slots:
                self._start(slot)
            while not self._stopping:
                self._step()
            return self._shutdown()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"\0")  # wakes the wait() in _step

    def _step(self) -> None:
        now = time.monotonic()
        pending = [s.restart_at for s in self._slots if s.process is None]
        timeout = max(0.0, min(pending) - now) if pending else None
        running = [s.process.sentinel for s in self._slots if s.process is not None]
        wait([*running, self._wake_r], timeout)
        if self._stopping:
            return
        now = time.monotonic()
        for slot in self._slots:
            process = slot.process
            if process is not None and process.exitcode is not None:
                lived = now - slot.started_at
                delay = slot.backoff.delay_after(lived)
                log.warning(
                    "worker %d (pid %s) %s after %.1f s; restarting it in %.1f s",
                    slot.index,
                    process.pid,
                    _describe_exit(process.exitcode),
                    lived,
                    delay,
                    extra={"worker": slot.index, "pid": process.pid, "exit": process.exitcode},
                )
                process.join()
                process.close()
                slot.process, slot.restart_at = None, now + delay
            elif process is None and now >= slot.restart_at:
                self._start(slot)
                log.warning(
                    "worker %d restarted (pid %s)",
                    slot.index,
                    slot.process and slot.process.pid,
                    extra={"worker": slot.index},
                )

    def _start(self, slot: _Slot) -> None:
        process = self._spawn(slot.index)
        # A Ctrl-C reaches the whole process group: the child must be born with SIGINT held
        # (it then ignores it, see ``ignore_interrupts``) so that the supervisor alone decides;
        # a SIGINT for us meanwhile is held too, not lost.
        with _sigint_blocked():
            process.start()
        slot.process, slot.started_at = process, time.monotonic()

    def _shutdown(self) -> int:
        running = [s.process for s in self._slots if s.process is not None]
        for process in running:
            if process.exitcode is None:
                process.terminate()  # SIGTERM: the worker's graceful stop
        deadline = time.monotonic() + self._grace
        clean = True
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                log.warning("worker pid %s did not stop in time; killing it", process.pid)
                process.kill()
                process.join()
            # -SIGTERM: a worker stopped before it had installed its handler (still starting).
            clean = clean and process.exitcode in (0, -signal.SIGTERM)
            process.close()
        return 0 if clean else 1


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# -- in the worker ------------------------------------------------------------------------------


def ignore_interrupts() -> None:
    """In a supervised worker: Ctrl-C is the supervisor's to act on (it sends SIGTERM)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to send this process SIGTERM when its parent dies (Linux), and exit now
    if that already happened. Elsewhere ``parent_alive`` is the only guard."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if not parent_alive(parent_pid):
        os._exit(1)  # the supervisor died before we could ask


def parent_alive(parent_pid: int) -> bool:
    """An orphan is adopted by init or a subreaper, so its parent pid changes."""
    return os.getppid() == parent_pid
