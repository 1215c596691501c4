"""Benchmarks: `python -m perf.run` (see perf/README.md). Not part of the test run."""
