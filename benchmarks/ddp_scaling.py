"""One process with N torch threads vs N DDP processes (torchrun, gloo) of one thread each, side
by side on ML-100K with the HSTU recipe of `configs/ml-100k.yaml`: seconds per epoch (training
and validation, as `pretrain` logs them) and the whole run's wall seconds (torchrun's start-up
included). The two alternate `--rounds` times, so a change in the machine's load hits both; the
ratio is the median of the per-round ratios of the median epoch (the first epoch is warm-up and
not counted).

    python -m benchmarks.ddp_scaling --data ml-100k.inter --processes 2

Writes benchmarks/results/ddp_scaling.json and prints a table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.pretrain_throughput import ML100K, _resolve
from benchmarks.side_by_side import alternate, round_ratios, save
from training.core.config import ModelConfig, TrainConfig

OUT = Path(__file__).resolve().parent / "results" / "ddp_scaling.json"
MODES = ("threads", "ddp")


def _run(path: str, mcfg: ModelConfig, tcfg: TrainConfig, mode: str, n: int) -> dict[str, Any]:
    """One fixed-length training run in this (fresh) process: `n` threads or `n` DDP ranks."""
    from training.core.data import build_dataset, read_user_sequences
    from training.pretrain.ddp import launch_pretrain
    from training.pretrain.loop import pretrain

    data = build_dataset(read_user_sequences(path), max_len=mcfg.max_len)
    rows: list[dict[str, Any]] = []
    quiet = lambda s: None  # noqa: E731
    with tempfile.TemporaryDirectory() as ckdir:
        t0 = time.perf_counter()
        if mode == "ddp":
            cfg = replace(tcfg, num_threads=1)
            launch_pretrain(data, mcfg, cfg, ckdir, n, quiet, lambda e, r: rows.append(r))
        else:
            cfg = replace(tcfg, num_threads=n)
            pretrain(data, mcfg, cfg, ckdir, quiet, lambda e, r: rows.append(r))
        wall = time.perf_counter() - t0
    epochs = [r["seconds"] for r in rows]
    return {
        "mode": mode,
        "n": n,
        "epoch_seconds": epochs,
        "seconds_per_epoch": float(np.median(epochs[1:])),
        "wall_seconds": wall,
    }


def benchmark(
    path: Path, mcfg: ModelConfig, tcfg: TrainConfig, n: int, rounds: int
) -> dict[str, Any]:
    load_before = os.getloadavg()
    runs = alternate(_run, lambda mode: (str(path), mcfg, tcfg, mode, n), MODES, rounds)
    ratios = round_ratios(runs, "ddp", "threads", "seconds_per_epoch")
    return {
        "data_path": str(path),
        "model_config": mcfg.to_dict(),
        "train_config": tcfg.to_dict(),
        "n": n,
        "rounds": rounds,
        "cores": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "summary": {
            m: {
                k: float(np.median([r[k] for r in runs[m]]))
                for k in ("seconds_per_epoch", "wall_seconds")
            }
            for m in MODES
        },
        "ddp_over_threads_seconds_per_epoch": float(np.median(ratios)),
        "per_round_ratios": ratios,
        "runs": runs,
    }


def markdown(report: dict[str, Any]) -> str:
    s, n = report["summary"], report["n"]
    lines = [
        f"{report['rounds']} rounds x {report['train_config']['epochs']} epochs, load "
        f"{report['load_average_before'][0]:.1f} before",
        "",
        "| training | s / epoch | run wall s |",
        "| --- | ---: | ---: |",
        f"| 1 process, {n} threads | {s['threads']['seconds_per_epoch']:.2f} | "
        f"{s['threads']['wall_seconds']:.1f} |",
        f"| {n} DDP processes, 1 thread each | {s['ddp']['seconds_per_epoch']:.2f} | "
        f"{s['ddp']['wall_seconds']:.1f} |",
        f"\nDDP / threads seconds per epoch: {report['ddp_over_threads_seconds_per_epoch']:.2f}",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=ML100K, help="ml-100k (the fetched file) or a path")
    p.add_argument("--processes", type=int, default=2, help="DDP ranks = threads of the other")
    p.add_argument("--epochs", type=int, default=5, help="epochs per run (the first is warm-up)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args()
    # The ML-100K recipe (configs/ml-100k.yaml); no early stop inside the timed epochs.
    mcfg = ModelConfig(kind="hstu", query_time="decision")
    tcfg = TrainConfig(epochs=a.epochs, patience=a.epochs + 1, ema_decay=0.99,
                       logits_matmul="bfloat16", seen_scope="history")  # fmt: skip
    report = benchmark(_resolve(a.data, Path(".")), mcfg, tcfg, a.processes, a.rounds)
    save(report, a.out, markdown)


if __name__ == "__main__":
    main()
