"""The champion rule replayed on a study's results table, without training anything.

The rule (`training.posttrain.champion.choose_champion`) reads only the study's summary (mean and
95% half-width per metric and configuration), which `posttrain_results.csv` holds. Replaying it
shows what a study would register under other margins, and applies the current rule to studies
run before it existed:

    python -m training.posttrain.champion_replay <data>/reports/posttrain/posttrain_results.csv
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

from common.tables import markdown_table
from training.posttrain.champion import CHECKS, choose_champion
from training.posttrain.settings import PosttrainSettings


def summary_from_csv(path: Path) -> dict[str, dict[str, Any]]:
    """The study's summary as `choose_champion` reads it, from its `posttrain_results.csv`."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    required = {"policy", "method", "ndcg@10_mean", "judge_reward_mean", "kl_mean"}
    if not rows or not required <= set(rows[0]):
        missing = sorted(required - set(rows[0] if rows else ()))
        raise ValueError(f"{path}: not a post-training results table (missing columns {missing})")
    summary: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry: dict[str, Any] = {"method": row["method"], "beta": row.get("beta") or None}
        for column, value in row.items():
            if column.endswith("_mean") and value != "":
                metric = column.removesuffix("_mean")
                ci = row.get(f"{metric}_ci95") or "0"
                entry[metric] = {"mean": float(value), "ci95": float(ci)}
        summary[row["policy"]] = entry
    return summary


def decision_table(decision: dict[str, Any]) -> str:
    """One row per candidate: each check's figures and verdict, and whether it is registered."""
    rows = []
    for label, c in decision["checks"].items():
        judge, ndcg, kl = c["judge_beats_bc"], c["ndcg_not_worse"], c["kl_within_bound"]
        failed = [name for name in CHECKS if not c[name]["passed"]]
        rows.append(
            [
                label,
                f"{judge['candidate']:.4f} ± {judge['candidate_ci95']:.4f}"
                f" vs {judge['bc']:.4f} ± {judge['bc_ci95']:.4f}",
                f"{ndcg['relative_difference']:+.1%} vs {ndcg['reference']} (margin"
                f" {ndcg['margin']:.0%})",
                f"{kl['candidate']:.3f} (bound {kl['bound']})",
                "registered" if label == decision["label"] else ", ".join(failed) or "eligible",
            ]
        )
    headers = ["candidate", "judge vs BC", "NDCG@10 vs reference", "KL", "outcome / failed checks"]
    return markdown_table(headers, rows)


def main(argv: list[str] | None = None) -> None:
    defaults = PosttrainSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a study's posttrain_results.csv")
    parser.add_argument("--ndcg-margin", type=float, default=defaults.ndcg_margin)
    parser.add_argument("--max-kl", type=float, default=defaults.max_kl)
    args = parser.parse_args(argv)
    summary = summary_from_csv(args.results)
    decision = choose_champion(summary, ndcg_margin=args.ndcg_margin, max_kl=args.max_kl)
    print(decision_table(decision))
    print(f"\nregistered: {decision['label'] or 'nothing'} ({decision['reason']})")


if __name__ == "__main__":
    main()
