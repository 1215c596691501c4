"""The account guard's cost per request: `SessionGuard.authenticate` (JWT check plus the
in-memory ended-sessions lookup) against the bare JWT check it wraps.

    python perf/guard_cost.py [--revoked 10000] [--rounds 50000]

Prints microseconds per call; asserts nothing (a benchmark reports, it does not judge).
"""

from __future__ import annotations

import argparse
import asyncio
import timeit
import uuid
from collections.abc import Callable

from app.core.sessions import Reason, Revocation, SessionGuard
from app.core.tokens import Identity, issue_access_token, verify_access_claims

SECRET = "perf-secret-" + "z" * 40


def _per_call_us(run: Callable[[], object], rounds: int, repeats: int = 7) -> float:
    """The best of ``repeats`` timings (the least disturbed by other work on the machine)."""
    return min(timeit.repeat(run, number=rounds, repeat=repeats)) / rounds * 1e6


async def main(revoked: int, rounds: int) -> None:
    guard = SessionGuard(SECRET, 900)
    now_ms = guard.now_ms()
    guard.learn_all([Revocation(str(uuid.uuid4()), now_ms, Reason.LOGOUT) for _ in range(revoked)])
    identity = Identity(str(uuid.uuid4()), "bench")
    header = "Bearer " + issue_access_token(identity, SECRET, 900)
    token = header.removeprefix("Bearer ")

    def guarded() -> None:
        # One await of guard.authenticate without an event loop's scheduling around it.
        coroutine = guard.authenticate(header)
        try:
            coroutine.send(None)
        except StopIteration:
            pass

    bare = _per_call_us(lambda: verify_access_claims(token, SECRET), rounds)
    sync = _per_call_us(lambda: guard.verify(token), rounds)
    via_coroutine = _per_call_us(guarded, rounds)
    lookup = _per_call_us(lambda: guard.refusal(identity.user_id, now_ms), rounds * 20)
    print(f"ended sessions known: {guard.known}; best of 7 x {rounds} calls each")
    print(f"bare JWT verify (pyjwt):     {bare:7.2f} us/call")
    print(f"guard.verify (sync):         {sync:7.2f} us/call")
    print(f"guard.authenticate (async):  {via_coroutine:7.2f} us/call")
    print(f"the guard's own lookup:      {lookup:7.3f} us/call")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--revoked", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=50_000)
    args = parser.parse_args()
    asyncio.run(main(args.revoked, args.rounds))
