"""The pretraining comparison: HSTU vs SASRec (same code, same budget) vs popularity, over seeds.

Leave-one-out by time, full-catalogue ranking, items the user already saw excluded. Prints a
Markdown table of test metrics as mean +- 95% CI (Student t over seeds) and writes JSON.

    python -m training.pretrain.compare --data ml-100k.inter --seeds 0 1 2 --out results.json

The defaults are the tuned small CPU configuration (training/core/config.py); `--jobs 3
--train '{"num_threads": 1}'` trains three runs at a time, one core each.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch

from common.tables import markdown_table
from training.core.config import ModelConfig, TrainConfig
from training.core.data import SequenceData, build_dataset, read_user_sequences
from training.core.metrics import RANKING_METRICS
from training.core.stats import mean_ci
from training.pretrain.loop import available_cores, pretrain


def _run_one(
    data: SequenceData, mcfg: ModelConfig, tcfg: TrainConfig, log: Callable[[str], None]
) -> dict[str, Any]:
    """One training run; CPU seconds (time.process_time, this process only) are the figure
    that survives a shared machine, wall seconds are what a user waits."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    r = pretrain(data, mcfg, tcfg, log=log)
    return {
        "seed": tcfg.seed,
        "best_epoch": r.best_epoch,
        "epochs": len(r.history),
        "train_seconds": r.train_seconds,
        "wall_seconds": time.perf_counter() - wall0,
        "cpu_seconds": time.process_time() - cpu0,
        "threads": torch.get_num_threads(),
        "test": r.metrics["test"],
        "valid": r.metrics["valid"],
        "popularity_test": r.metrics["popularity_test"],
    }


def _run_in_child(args: tuple[SequenceData, ModelConfig, TrainConfig]) -> dict[str, Any]:
    return _run_one(*args, log=lambda s: None)


def compare(
    table: pa.Table,
    kinds: tuple[str, ...] = ("hstu", "sasrec"),
    seeds: tuple[int, ...] = (0, 1, 2),
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    log: Callable[[str], None] = print,
    jobs: int = 1,
) -> dict[str, Any]:
    """Train every kind with every seed; per-run test metrics plus mean/CI per method.

    `jobs` > 1 runs that many trainings at once, each in its own process (give each
    `num_threads=1` so they do not fight over cores).
    """
    mcfg, tcfg = model_config or ModelConfig(), train_config or TrainConfig()
    data = build_dataset(table, max_len=mcfg.max_len)
    grid = [(kind, seed) for kind in kinds for seed in seeds]
    args = [(data, replace(mcfg, kind=k), replace(tcfg, seed=s)) for k, s in grid]
    if jobs > 1:
        with mp.get_context("spawn").Pool(jobs) as pool:
            done = pool.map(_run_in_child, args, chunksize=1)
    else:
        done = [_run_one(*a, log=log) for a in args]
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for (kind, seed), run in zip(grid, done, strict=True):
        runs[kind].append(run)
        log(f"{kind} seed {seed}: {run}")
    popularity = done[-1].pop("popularity_test") if done else None
    for run in done:
        run.pop("popularity_test", None)
    summary: dict[str, Any] = {}
    for kind, rs in runs.items():
        summary[kind] = {m: mean_ci([r["test"][m] for r in rs]) for m in RANKING_METRICS}
        for key in ("cpu_seconds", "wall_seconds", "best_epoch"):
            summary[kind][key] = mean_ci([r[key] for r in rs])
    summary["popularity"] = {m: (popularity[m], 0.0) for m in RANKING_METRICS} if popularity else {}
    return {
        "protocol": "leave-one-out by time; full-catalogue ranking; items already seen by the "
        "user excluded (never the target); test metrics of the best-valid-NDCG@10 epoch",
        "data": data.summary(),
        "model_config": mcfg.to_dict(),
        "train_config": tcfg.to_dict(),
        "jobs": jobs,
        "cores": available_cores(),
        "load_average": os.getloadavg(),
        "runs": runs,
        "summary": summary,
    }


def markdown(summary: dict[str, Any]) -> str:
    """Mean ± 95% CI per metric; training CPU and wall seconds per run (mean ± CI)."""
    rows = []
    for method, s in summary.items():
        cells = [f"{s[m][0]:.4f} ± {s[m][1]:.4f}" for m in RANKING_METRICS]
        for key in ("cpu_seconds", "wall_seconds", "best_epoch"):
            cells.append(f"{s[key][0]:.0f} ± {s[key][1]:.0f}" if key in s else "-")
        rows.append([method, *cells])
    headers = ["method", *RANKING_METRICS, "train CPU s", "train wall s", "best epoch"]
    return markdown_table(headers, rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="user_sequences .parquet or RecBole .inter")
    p.add_argument("--kinds", nargs="+", default=["hstu", "sasrec"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--model", default="{}", help="JSON overrides of ModelConfig")
    p.add_argument("--train", default="{}", help="JSON overrides of TrainConfig")
    p.add_argument("--jobs", type=int, default=1, help="trainings at once, one process each")
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    result = compare(
        read_user_sequences(a.data),
        tuple(a.kinds),
        tuple(a.seeds),
        ModelConfig(**json.loads(a.model)),
        TrainConfig(**json.loads(a.train)),
        log=lambda s: print(s, flush=True),
        jobs=a.jobs,
    )
    print(markdown(result["summary"]), end="")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
