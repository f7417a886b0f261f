"""The pretraining comparison: HSTU vs SASRec (same code, same budget) vs popularity, over seeds.

Leave-one-out by time, full-catalogue ranking, items the user already saw excluded. Prints a
Markdown table of test metrics as mean +- 95% CI (Student t over seeds) and writes JSON.

    python -m training.experiment --data ml-100k.inter --seeds 0 1 2 --out results.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from training.config import ModelConfig, TrainConfig
from training.data import build_dataset, read_user_sequences
from training.pretrain import pretrain

METRICS = ("ndcg@10", "hr@10", "ndcg@50", "hr@50", "mrr")
# Two-sided 97.5% Student t quantiles by degrees of freedom (no scipy dependency).
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (0 for a single value)."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return float(x.mean()), 0.0
    t = _T975.get(len(x) - 1, 1.96)
    return float(x.mean()), float(t * x.std(ddof=1) / math.sqrt(len(x)))


def compare(
    table: pa.Table,
    kinds: tuple[str, ...] = ("hstu", "sasrec"),
    seeds: tuple[int, ...] = (0, 1, 2),
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train every kind with every seed; per-run test metrics plus mean/CI per method."""
    mcfg, tcfg = model_config or ModelConfig(), train_config or TrainConfig()
    data = build_dataset(table, max_len=mcfg.max_len)
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    popularity = None
    for kind in kinds:
        for seed in seeds:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            r = pretrain(data, replace(mcfg, kind=kind), replace(tcfg, seed=seed), log=log)
            runs[kind].append(
                {
                    "seed": seed,
                    "best_epoch": r.best_epoch,
                    "epochs": len(r.history),
                    "train_seconds": r.train_seconds,
                    "wall_seconds": time.perf_counter() - wall0,
                    "cpu_seconds": time.process_time() - cpu0,
                    "test": r.metrics["test"],
                    "valid": r.metrics["valid"],
                }
            )
            popularity = r.metrics["popularity_test"]
            log(f"{kind} seed {seed}: {runs[kind][-1]}")
    summary: dict[str, Any] = {}
    for kind, rs in runs.items():
        summary[kind] = {m: mean_ci([r["test"][m] for r in rs]) for m in METRICS}
        summary[kind]["train_seconds"] = mean_ci([r["train_seconds"] for r in rs])
    summary["popularity"] = {m: (popularity[m], 0.0) for m in METRICS} if popularity else {}
    return {
        "protocol": "leave-one-out by time; full-catalogue ranking; items already seen by the "
        "user excluded (never the target); test metrics of the best-valid-NDCG@10 epoch",
        "data": data.summary(),
        "model_config": mcfg.to_dict(),
        "train_config": tcfg.to_dict(),
        "load_average": os.getloadavg(),
        "runs": runs,
        "summary": summary,
    }


def markdown(summary: dict[str, Any]) -> str:
    head = "| method | " + " | ".join(METRICS) + " | train s |"
    lines = [head, "|" + " --- |" * (len(METRICS) + 2)]
    for method, s in summary.items():
        cells = [f"{s[m][0]:.4f} ± {s[m][1]:.4f}" for m in METRICS]
        secs = (
            f"{s['train_seconds'][0]:.0f} ± {s['train_seconds'][1]:.0f}"
            if "train_seconds" in s
            else "-"
        )
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {secs} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="user_sequences .parquet or RecBole .inter")
    p.add_argument("--kinds", nargs="+", default=["hstu", "sasrec"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--model", default="{}", help="JSON overrides of ModelConfig")
    p.add_argument("--train", default="{}", help="JSON overrides of TrainConfig")
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    result = compare(
        read_user_sequences(a.data),
        tuple(a.kinds),
        tuple(a.seeds),
        ModelConfig(**json.loads(a.model)),
        TrainConfig(**json.loads(a.train)),
        log=lambda s: print(s, flush=True),
    )
    print(markdown(result["summary"]))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
