"""Does the front dispatcher (app/live/front.py) cost the HTTP API anything?

Runs `wrk` against GET /api/leaderboard on `leaderboard serve` (front dispatcher + Hypercorn)
and on plain Hypercorn serving the same app, one process each, alternately, and prints
requests per second. Traffic only to 127.0.0.1; each run lasts --seconds. Needs `wrk`.

    python perf/live_http_overhead.py --seconds 10 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from perf.live_broadcast import drop_database, free_port, prepare_database  # noqa: E402


def start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    port = env["PORT"]
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/leaderboard", timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{argv} did not start")


def wrk(port: str, seconds: int) -> float:
    out = subprocess.run(
        ["wrk", "-t1", "-c50", f"-d{seconds}s", f"http://127.0.0.1:{port}/api/leaderboard"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(match.group(1)) if match else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    admin_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"perf_{uuid.uuid4().hex[:10]}"
    database_url, _, _ = asyncio.run(prepare_database(admin_url, name))
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "REDIS_NAMESPACE": name,
        "JWT_SECRET": "perf-" + "x" * 40,
        "HOST": "127.0.0.1",
    }
    variants = {
        "leaderboard serve (front + Hypercorn)": [sys.executable, "-m", "app.cli.main", "serve"],
        "plain Hypercorn (uvloop)": [
            sys.executable,
            "-m",
            "hypercorn",
            "-k",
            "uvloop",
            "app.http.app:app_from_env()",
        ],
    }
    results: dict[str, list[float]] = {k: [] for k in variants}
    try:
        for _ in range(args.rounds):
            for label, argv in variants.items():
                port = str(free_port())
                argv = [*argv, "--bind", f"127.0.0.1:{port}"] if "hypercorn" in argv else argv
                process = start(argv, {**env, "PORT": port})
                try:
                    results[label].append(wrk(port, args.seconds))
                finally:
                    process.send_signal(signal.SIGTERM)
                    process.wait(20)
                print(f"  {label}: {results[label][-1]:.0f} req/s", flush=True)
    finally:
        asyncio.run(drop_database(admin_url, name))
    for label, values in results.items():
        print(f"{label}: median {sorted(values)[len(values) // 2]:.0f} req/s over {values}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
