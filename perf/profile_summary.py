"""Where a worker's time goes, from py-spy's raw (collapsed) output.

    python -m perf.profile_summary perf/results/write-path/write-quart.txt [...]

Each sample is charged to the first bucket (in the order below) that any frame of its stack
belongs to, so nested work is counted once: a redis-py call made from a Quart handler counts
as Redis, not as Quart. What is left is the event loop, sockets and the rest.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# (bucket, substrings of a frame "function (file:line)"), most specific first.
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("PostgreSQL client (asyncpg, commit)", ("asyncpg/", "app/db/")),
    ("Redis client (redis-py, scripts)", ("redis/", "app/redis/")),
    ("token check (pyjwt, account guard)", ("jwt/", "app/core/sessions.py", "app/core/tokens.py")),
    ("access log", ("logging/", "app/obs/logging_setup.py")),
    ("metrics", ("prometheus_client/",)),
    ("HTTP parsing (h11, in Hypercorn or on the lean path)", ("h11/",)),
    ("Quart, quart-schema, Hypercorn (framework)", ("quart/", "quart_schema/", "hypercorn/")),
    ("body validation (pydantic)", ("pydantic",)),
    ("front and lean path (app/edge: socket writes in uvloop, bookkeeping)", ("app/edge/",)),
    ("core and route (scoring, verification, validation)", ("app/core/", "app/http/")),
]


def summarize(path: Path) -> tuple[int, Counter[str]]:
    total = 0
    charged: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        for bucket, marks in BUCKETS:
            if any(mark in frame for frame in frames for mark in marks):
                charged[bucket] += samples
                break
        else:
            charged["event loop, sockets, other"] += samples
    return total, charged


def main(paths: list[str]) -> None:
    for name in paths:
        total, charged = summarize(Path(name))
        print(f"{name}: {total} samples")
        for bucket, samples in charged.most_common():
            print(f"  {100 * samples / max(1, total):5.1f} %  {bucket}")


if __name__ == "__main__":
    main(sys.argv[1:])
