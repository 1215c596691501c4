"""The account guard's cost per request: `SessionGuard.authenticate` (JWT check plus the
in-memory ended-sessions lookup) against the bare JWT check it wraps.

    python perf/guard_cost.py [--revoked 10000] [--rounds 50000]

Prints microseconds per call; asserts nothing (a benchmark reports, it does not judge).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from app.core.sessions import Reason, Revocation, SessionGuard
from app.core.tokens import Identity, issue_access_token, verify_access_claims

SECRET = "perf-secret-" + "z" * 40


def _per_call_us(run: object, rounds: int) -> float:
    began = time.perf_counter()
    for _ in range(rounds):
        run()  # type: ignore[operator]
    return (time.perf_counter() - began) / rounds * 1e6


async def main(revoked: int, rounds: int) -> None:
    guard = SessionGuard(SECRET, 900)
    now_ms = guard.now_ms()
    guard.learn_all([Revocation(str(uuid.uuid4()), now_ms, Reason.LOGOUT) for _ in range(revoked)])
    identity = Identity(str(uuid.uuid4()), "bench")
    header = "Bearer " + issue_access_token(identity, SECRET, 900)
    token = header.removeprefix("Bearer ")
    loop = asyncio.get_running_loop()

    def guarded() -> None:
        coroutine = guard.authenticate(header)
        try:
            coroutine.send(None)
        except StopIteration:
            pass

    bare = _per_call_us(lambda: verify_access_claims(token, SECRET), rounds)
    sync = _per_call_us(lambda: guard.verify(token), rounds)
    via_coroutine = _per_call_us(guarded, rounds)
    began = loop.time()
    for _ in range(rounds // 10):
        await guard.authenticate(header)
    awaited = (loop.time() - began) / (rounds // 10) * 1e6
    print(f"ended sessions known: {guard.known}")
    print(f"bare JWT verify:            {bare:6.1f} us/call")
    print(f"guard.verify (sync):        {sync:6.1f} us/call  (+{sync - bare:.1f})")
    print(
        f"guard.authenticate (async): {via_coroutine:6.1f} us/call  (awaited in a loop: "
        f"{awaited:.1f})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--revoked", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=50_000)
    args = parser.parse_args()
    asyncio.run(main(args.revoked, args.rounds))
