"""Results: JSON, a Markdown table with ratios to the ceilings, and PNG percentile plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from perf.stats import Summary


def plain(value: Any) -> Any:
    if isinstance(value, Summary):
        return value.as_json()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def row(label: str, s: dict[str, Any], note: str = "") -> str:
    rate = f"{s['target_rate']:,.0f}/s" if s.get("target_rate") else "closed"
    return (
        f"| {label} | {rate} | {s['throughput']:,.0f}/s | {s['p50']:.2f} | {s['p95']:.2f} | "
        f"{s['p99']:.2f} | {s['max']:.1f} | {s['errors']} | {note} |"
    )


def markdown(results: dict[str, Any]) -> str:
    r = plain(results)
    lines = [
        f"# Benchmark run {r['started']}",
        "",
        f"Command: `{r['command']}`  ",
        f"Machine: {r['machine']}  ",
        f"Code: commit {r.get('commit', 'unknown')}  ",
        f"Service: {r['workers']} worker process(es); backing servers: {r['backing']}",
        "",
        "| scenario | offered | throughput | p50 ms | p95 ms | p99 ms | max ms | errors | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    goals: list[str] = []
    read = r.get("read")
    if read:
        closed, ceiling = read["closed"], read["ceiling"]
        lines.append(
            row(
                "read, closed loop 1,000 conns (wrk)",
                closed,
                f"app ÷ ceiling {ratio(closed['throughput'], ceiling['throughput'])}; "
                f"wrk CPU {closed['extra'].get('loadgen_cpu_share', '?')}",
            )
        )
        lines.append(row("ceiling: constant response, same stack (Quart)", ceiling))
        bare = read.get("bare")
        if bare:
            lines.append(
                row(
                    "ceiling: bare asyncio server, same bytes",
                    bare,
                    f"app ÷ bare ceiling {ratio(closed['throughput'], bare['throughput'])}; "
                    f"wrk CPU {bare['extra'].get('loadgen_cpu_share', '?')}",
                )
            )
        for step in read["ramp"]:
            lines.append(
                row(
                    "read, open loop 1,000 conns",
                    step,
                    ("meets" if step["extra"]["meets_p95_target"] else "misses")
                    + f" p95<5 ms; gen CPU {step['extra']['loadgen_cpu_share']}",
                )
            )
        best = read["max_rate_p95_under_5ms"]
        ok_closed = closed["throughput"] >= 0.9 * ceiling["throughput"]
        goals.append(
            f"- read closed loop ≥ 90 % of ceiling: "
            f"{ratio(closed['throughput'], ceiling['throughput'])} → "
            f"{'met' if ok_closed else 'MISSED'}"
        )
        goals.append(
            f"- read open loop p95 < 5 ms at ≥ 3,000/s: highest passing rate {best:,.0f}/s → "
            f"{'met' if best >= 3000 else 'MISSED'}"
        )
    other = r.get("granian")
    if other:
        lines.append(
            row(
                "same app on granian, GET /api/leaderboard",
                other["board"],
                "through Quart: granian has no front dispatcher",
            )
        )
        lines.append(
            row(
                "same app on granian, constant response (Quart)",
                other["healthz"],
                "Hypercorn ÷ granian, same Quart route: "
                + ratio(read["ceiling"]["throughput"], other["healthz"]["throughput"])
                if read
                else "",
            )
        )
    write = r.get("write")
    ceil = r.get("write_ceilings", {})
    commit_rate = ceil.get("commit statement", {}).get("throughput", 0)
    if write:
        for key in ("seed_100", "goal_1000"):
            s = write[key]
            lines.append(row("write, open loop", s, f"service p50 {s['extra']['service_p50']} ms"))
        for step in write["ramp"]:
            lines.append(
                row(
                    "write, open-loop ramp",
                    step,
                    ("meets" if step["extra"]["meets_p95_target"] else "misses")
                    + f" p95<50 ms; gen CPU {step['extra']['loadgen_cpu_share']}",
                )
            )
        best = write["max_rate_p95_under_50ms"]
        goal = write["goal_1000"]
        goals.append(
            f"- write p95 < 10 ms at 1,000/s: p95 {goal['p95']:.1f} ms → "
            f"{'met' if goal['p95'] < 10 and goal['errors'] == 0 else 'MISSED'}"
        )
        goals.append(
            f"- write max rate at p95 < 50 ms ≥ 2,000/s: {best:,.0f}/s "
            f"(commit-statement ceiling {commit_rate:,.0f}/s, ratio {ratio(best, commit_rate)}) → "
            f"{'met' if best >= 2000 else 'MISSED'}"
        )
        full = ceil.get("gate+commit+apply", {}).get("throughput", 0)
        if full:
            goals.append(
                f"- write max rate at p95 < 50 ms ≥ 0.8 x the same run's gate+commit+apply "
                f"ceiling: {best:,.0f}/s vs {full:,.0f}/s, ratio {ratio(best, full)} → "
                f"{'met' if best >= 0.8 * full else 'MISSED'} (the ramp's steps are 250/s apart)"
            )
    for name, s in ceil.items():
        lines.append(row(f"ceiling: {name} (no HTTP, 32 in flight)", s))
    limits = r.get("limits")
    if limits:
        s = limits["burst"]
        lines.append(
            row(
                "limits, 15 rapid requests per user",
                s,
                f"{s['extra']['users_exact']}/{s['extra']['users']} users exactly 10 accepted",
            )
        )
        goals.append(f"- limits exact: {'met' if limits['exact'] else 'MISSED'}")
    for key in ("live_2000", "live_10000"):
        live = r.get(key)
        if not live:
            continue
        app, fan = live["app"], live["ceiling"]
        e = app["extra"]
        lines.append(
            row(
                f"live {e['clients']:,} clients, commit → receipt",
                app,
                f"{e['server_processes']} server procs; "
                f"{e['server_rss_per_connection_kib']} KiB/conn; "
                f"last client median {e['last_client_median_ms']} ms; "
                f"missing {e['missing_deliveries']}; "
                f"p99 app ÷ ceiling {ratio(app['p99'], fan['p99'])}",
            )
        )
        lines.append(
            row(
                "ceiling: bare fan-out, same bytes, same clients",
                fan,
                f"last client median {fan['extra']['last_client_median_ms']} ms",
            )
        )
        if key == "live_10000":
            goals.append(
                f"- live 10,000 clients p99 < 100 ms: p99 {app['p99']:.1f} ms, "
                f"{e['clients']:,} held → "
                + ("met" if app["p99"] < 100 and e["clients"] >= 10000 else "MISSED")
            )
    mixed = r.get("mixed")
    if mixed:
        for part in ("read", "write", "live"):
            lines.append(row(f"mixed: {part}", mixed[part]))
        w = mixed["write"]
        goals.append(
            f"- mixed: completion p95 < 25 ms and p99 < 100 ms: p95 {w['p95']:.1f} ms, "
            f"p99 {w['p99']:.1f} ms → {'met' if w['p95'] < 25 and w['p99'] < 100 else 'MISSED'}"
        )
    boards = r.get("boards")
    if boards:
        one, four = boards["one board"], boards["four boards"]
        for name in ("commit statement", "gate+commit+apply"):
            lines.append(row(f"boards: {name}, all-time only (ceiling)", one["ceilings"][name]))
            lines.append(
                row(
                    f"boards: {name}, four built-in boards (ceiling)",
                    four["ceilings"][name],
                    "four ÷ one "
                    + ratio(
                        four["ceilings"][name]["throughput"], one["ceilings"][name]["throughput"]
                    ),
                )
            )
        for rate in one["http"]:
            lines.append(row("boards: POST complete, all-time only", one["http"][rate]))
            lines.append(row("boards: POST complete, four boards", four["http"][rate]))
        for name in ("page 100 (limit=100)", "around=me (radius 5)"):
            slower = boards.get(f"{name} @ 500/s")
            if slower:
                lines.append(row(f"boards: GET {name}, weekly, 12,000 ranked", slower))
            lines.append(row(f"boards: GET {name}, weekly, 12,000 ranked", boards[name]))
            goals.append(
                f"- boards {name} at 1,000/s: p95 {boards[name]['p95']:.1f} ms, "
                f"{boards[name]['errors']} errors"
            )
    lines += ["", "Goals:", *goals, ""]
    lines.append(
        "Latencies in ms. Open-loop latencies are measured from each request's scheduled "
        "send time. Ratios survive a noisy machine better than absolute figures."
    )
    return "\n".join(lines) + "\n"


def plots(results: dict[str, Any], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = plain(results)
    made: list[Path] = []

    def curve_plot(name: str, series: list[tuple[str, dict[str, Any]]], title: str) -> None:
        if not series:
            return
        fig, ax = plt.subplots(figsize=(8, 5))
        for label, s in series:
            points = [(p, v) for p, v in s["curve"] if p < 100]
            xs = [1 / (1 - p / 100) for p, _ in points]
            ax.plot(xs, [max(v, 0.01) for _, v in points], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = [1, 2, 4, 10, 20, 100, 200, 1000, 10000]
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{100 - 100 / t:g}" for t in ticks])
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency (ms)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        path = folder / f"{name}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        made.append(path)

    if "read" in r:
        series = [(f"{s['target_rate']:,.0f}/s", s) for s in r["read"]["ramp"]]
        series.append(("closed loop (wrk)", r["read"]["closed"]))
        curve_plot("read", series, "GET /api/leaderboard, 1,000 connections")
    if "write" in r:
        series = [("100/s", r["write"]["seed_100"]), ("1,000/s", r["write"]["goal_1000"])]
        series += [(f"ramp {s['target_rate']:,.0f}/s", s) for s in r["write"]["ramp"]]
        curve_plot("write", series, "POST /api/action/complete, open loop")
    live = [(k, r[k]) for k in ("live_2000", "live_10000") if k in r]
    series = []
    for key, value in live:
        series += [(f"{key} app", value["app"]), (f"{key} bare fan-out", value["ceiling"])]
    curve_plot("live", series, "commit → receipt at every client")
    if "mixed" in r:
        curve_plot("mixed", [(k, r["mixed"][k]) for k in ("read", "write", "live")], "mixed")
    return made


def write_all(results: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(plain(results), indent=2) + "\n")
    table = markdown(results)
    (folder / "results.md").write_text(table)
    try:
        plots(results, folder)
    except ImportError:
        print("  (matplotlib not installed: no plots; pip install -e '.[perf]')")
    return folder / "results.md"
