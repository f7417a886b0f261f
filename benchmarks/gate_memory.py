"""Peak memory of a GX gate on a large event table: the staged-events gate with the views'
strings as Python objects (pandas' "python" string storage, what the views used before) against
strings kept in Arrow memory (the default), side by side, each round in a fresh process.

    python -m benchmarks.gate_memory                     # 2M events, 2 rounds
    python -m benchmarks.gate_memory --events 10000000 --rounds 1

Each process builds the seeded synthetic table of `staging.stg_watch_events` (benchmarks/
synthetic_events.py), then runs `run_gate("staged_events", ...)` without Data Docs in a
throw-away GX context. Reported: the process's peak RSS during the gate (VmHWM, reset just before
it) over its RSS just before it, and the gate's seconds; then the resident memory once the gate
is dropped, after the jobs' per-step release (common/memory.py: Arrow's pool and the C heap
trimmed), and after a forced garbage collection and the release again, with what the collection
found and took. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.process_stats import peak_rss_mb, rss_now_mb, uptime
from benchmarks.scaling import world
from benchmarks.side_by_side import alternate, round_ratios, save

OUT = Path(__file__).resolve().parent / "results" / "gate_memory.json"
CONTENDERS = ("python_strings", "arrow_strings")


def run(contender: str, events: int) -> dict[str, Any]:
    import pandas as pd
    import pyarrow as pa

    import validation.views as views
    from benchmarks.synthetic_events import synthetic_events
    from common.memory import release_memory
    from validation.gate import run_gate

    if contender == "python_strings":
        python = pd.StringDtype("python")
        views._NULLABLE.update({pa.string(): python, pa.large_string(): python})
    table = synthetic_events(events, max(1, world(events)["n_users"]))
    with tempfile.TemporaryDirectory() as root:
        Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) restarts from now
        before, started = rss_now_mb(), time.perf_counter()
        gate = run_gate("staged_events", table, root=Path(root), update_docs=False)
        seconds = time.perf_counter() - started
    passed, peak = gate.success, peak_rss_mb()
    del gate
    after_gate = rss_now_mb()
    release_memory()  # what the jobs' hook does after every step
    after_release = rss_now_mb()
    started = time.perf_counter()
    collected = gc.collect()  # what the hook no longer forces
    gc_seconds = time.perf_counter() - started
    release_memory()
    return {
        "passed": passed,
        "seconds": seconds,
        "rss_before_mb": before,
        "gate_peak_over_before_mb": peak - before,
        "rss_after_gate_mb": after_gate,
        "rss_after_release_mb": after_release,
        "gc_collected_objects": collected,
        "gc_seconds": gc_seconds,
        "rss_after_gc_and_release_mb": rss_now_mb(),
    }


def table(report: dict[str, Any]) -> str:
    rows = [
        f"staged-events gate on {report['events']:,} events, {report['rounds']} round(s); "
        f"load before: {report['load_before']}",
        "| contender | peak over before (MB) | seconds | passed | RSS after the gate / after the "
        "hook's release / after gc + release (MB) | gc: objects, seconds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in CONTENDERS:
        runs = report["results"][name]
        peak = statistics.median(r["gate_peak_over_before_mb"] for r in runs)
        seconds = statistics.median(r["seconds"] for r in runs)
        last = runs[-1]
        after = " / ".join(
            f"{last[k]:,.0f}"
            for k in ("rss_after_gate_mb", "rss_after_release_mb", "rss_after_gc_and_release_mb")
        )
        rows.append(
            f"| {name} | {peak:,.0f} | {seconds:.1f} | {all(r['passed'] for r in runs)} | {after} "
            f"| {last['gc_collected_objects']:,}, {last['gc_seconds']:.2f} |"
        )
    ratios = report["arrow_over_python_peak"]
    rows.append(f"arrow / python peak, per round: {', '.join(f'{r:.2f}' for r in ratios)}")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    load = uptime()
    results = alternate(run, lambda c: (c, args.events), CONTENDERS, args.rounds)
    report = {
        "events": args.events,
        "rounds": args.rounds,
        "load_before": load,
        "results": results,
        "arrow_over_python_peak": round_ratios(
            results, "arrow_strings", "python_strings", "gate_peak_over_before_mb"
        ),
    }
    save(report, args.out, table)


if __name__ == "__main__":
    main()
