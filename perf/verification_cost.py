"""CPU cost of proving a completion (app/core/verification.py), per kind, in one process.

    python -m perf.verification_cost [--rounds N]

Runs verify_completion against an in-memory issuer directory (no database: the issuer lookup
of a real node is one primary-key read more), and prints microseconds per call. Figures, not
assertions: the write path's budget is set by the commit, this shows what verification adds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import jwt

from app.core.catalog import Action
from app.core.ports import Issuer
from app.core.tokens import Identity
from app.core.verification import verify_completion

SECRET = "perf-issuer-secret-" + "p" * 32


class Issuers:
    async def find(self, name: str) -> Issuer | None:
        return Issuer(name, SECRET) if name == "game-1" else None


async def measure(rounds: int) -> dict[str, float]:
    who = Identity(str(uuid.uuid4()), "perf")
    claim = Action("c", "C", 5)
    quiz = Action("q", "Q", 5, verification="quiz", questions=("a?",) * 5, answers=("Answer",) * 5)
    receipt = Action("r", "R", 5, verification="receipt")
    now = int(time.time())
    receipts = [
        jwt.encode(
            {
                "iss": "game-1",
                "sub": who.user_id,
                "actionId": "r",
                "jti": str(uuid.uuid4()),
                "iat": now,
                "exp": now + 300,
            },
            SECRET,
            algorithm="HS256",
        )
        for _ in range(rounds)
    ]
    issuers = Issuers()
    cases = {
        "claim": (claim, [None] * rounds),
        "quiz (5 answers)": (quiz, [{"answers": [" answer "] * 5}] * rounds),
        "receipt": (receipt, [{"receipt": r} for r in receipts]),
    }
    figures = {}
    for name, (action, datas) in cases.items():
        samples = []
        for data in datas:
            started = time.perf_counter()
            await verify_completion(action, who, data, issuers)
            samples.append(time.perf_counter() - started)
        figures[name] = statistics.median(samples) * 1e6
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5000)
    args = parser.parse_args()
    for name, micros in asyncio.run(measure(args.rounds)).items():
        print(f"{name:<18} {micros:8.1f} µs per verification (median of {args.rounds})")


if __name__ == "__main__":
    main()
