"""Latency summaries: percentiles over raw samples (milliseconds)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

CURVE_POINTS = (0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100)


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Summary:
    """What every scenario step reports: throughput and latency percentiles (ms)."""

    name: str
    count: int = 0
    errors: int = 0
    seconds: float = 0.0
    throughput: float = 0.0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    max: float = 0.0
    target_rate: float | None = None
    curve: list[tuple[float, float]] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return asdict(self)

    def line(self) -> str:
        rate = f" @ {self.target_rate:,.0f}/s offered" if self.target_rate else ""
        return (
            f"{self.name}{rate}: {self.throughput:,.0f}/s  p50 {self.p50:.2f}  p95 {self.p95:.2f}"
            f"  p99 {self.p99:.2f}  max {self.max:.1f} ms  (n={self.count}, errors={self.errors})"
        )


def summarize(
    name: str,
    latencies_ms: list[float],
    seconds: float,
    errors: int = 0,
    target_rate: float | None = None,
) -> Summary:
    ordered = sorted(latencies_ms)
    return Summary(
        name=name,
        count=len(ordered),
        errors=errors,
        seconds=round(seconds, 3),
        throughput=len(ordered) / seconds if seconds > 0 else 0.0,
        p50=percentile(ordered, 50),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
        max=ordered[-1] if ordered else 0.0,
        target_rate=target_rate,
        curve=[(p, round(percentile(ordered, p), 3)) for p in CURVE_POINTS],
    )
