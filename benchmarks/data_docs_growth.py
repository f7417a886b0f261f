"""What publishing one new validation to Data Docs costs as a data directory's history grows:
GX's full rebuild (every stored result rendered again, what `build_data_docs` did before) against
the incremental build (`validation.context.build_data_docs`: only the results without a page, the
suites' pages and the index), side by side on the same history.

    python -m benchmarks.data_docs_growth                     # 10, 100 and 300 stored results
    python -m benchmarks.data_docs_growth --history 10 1000 --rounds 3

A default run stores about ten validations (one per gate), so 300 results are a month of daily
runs. Each history is made of real validations: the staged-events gate on a seeded 200-event
table (benchmarks/synthetic_events.py) in a throw-away GX context, all published once. Then each
round adds one validation and publishes it with one contender, then another with the other, and
times each build with the offline rewrite of its pages.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.process_stats import uptime
from benchmarks.side_by_side import save

OUT = Path(__file__).resolve().parent / "results" / "data_docs_growth.json"
CONTENDERS = ("full_rebuild", "incremental")
EVENTS, USERS = 200, 20


def full_rebuild(root: Path) -> None:
    """GX's own build of the whole site, then every page made offline (the code before)."""
    from validation.context import DOCS_SITE, docs_index_path, get_context
    from validation.offline_docs import localize_site

    get_context(root).build_data_docs(site_names=[DOCS_SITE])
    localize_site(docs_index_path(root).parent)


def measure(history: int, rounds: int) -> dict[str, Any]:
    from benchmarks.synthetic_events import synthetic_events
    from validation.context import build_data_docs
    from validation.gate import run_gate

    table = synthetic_events(EVENTS, USERS)
    builds = {"full_rebuild": full_rebuild, "incremental": build_data_docs}
    seconds: dict[str, list[float]] = {c: [] for c in CONTENDERS}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for _ in range(history):
            assert run_gate("staged_events", table, root=root, update_docs=False).success
        build_data_docs(root)
        for _ in range(rounds):
            for contender in CONTENDERS:
                run_gate("staged_events", table, root=root, update_docs=False)
                started = time.perf_counter()
                builds[contender](root)
                seconds[contender].append(time.perf_counter() - started)
    return {"history": history, "seconds": seconds}


def table(report: dict[str, Any]) -> str:
    rows = [
        f"publishing one new validation to Data Docs, {report['rounds']} round(s) per size; "
        f"load before: {report['load_before']}",
        "| stored results | full rebuild (s) | incremental (s) | full / incremental |",
        "| --- | --- | --- | --- |",
    ]
    for size in report["sizes"]:
        full, new = (statistics.median(size["seconds"][c]) for c in CONTENDERS)
        rows.append(f"| {size['history']:,} | {full:.2f} | {new:.2f} | {full / new:.1f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, nargs="+", default=[10, 100, 300])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    report = {
        "rounds": args.rounds,
        "load_before": uptime(),
        "sizes": [measure(h, args.rounds) for h in args.history],
    }
    save(report, args.out, table)


if __name__ == "__main__":
    main()
