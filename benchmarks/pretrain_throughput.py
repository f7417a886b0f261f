"""Pretraining throughput, HSTU vs SASRec side by side: sequences/s, tokens/s, seconds per
epoch, peak RSS and full-ranking evaluation time, each kind in its own fresh process (so one
kind's peak memory never counts towards the other's).

    python -m benchmarks.pretrain_throughput --data ml-100k.inter
    python -m benchmarks.pretrain_throughput --data user_sequences.parquet --epochs 1

Writes benchmarks/results/pretrain_throughput.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.config import ModelConfig, TrainConfig
from training.data import build_dataset, read_user_sequences
from training.evaluate import model_ranks
from training.models import SequenceEncoder
from training.pretrain import available_cores, train_epoch

OUT = Path(__file__).resolve().parent / "results" / "pretrain_throughput.json"


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _measure(path: str, mcfg: ModelConfig, tcfg: TrainConfig, epochs: int) -> dict[str, Any]:
    """Runs in a child process: load, train `epochs` epochs, rank the test split."""
    torch.set_num_threads(tcfg.num_threads or available_cores())
    t0 = time.perf_counter()
    data = build_dataset(read_user_sequences(path), max_len=mcfg.max_len)
    load_s = time.perf_counter() - t0
    rss_data = _rss_mib()
    torch.manual_seed(tcfg.seed)
    model = SequenceEncoder(data.n_items, mcfg)
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, betas=tcfg.betas)
    # Real (non-padding) input tokens and sequences per epoch; padding is work, not throughput.
    tokens = int((data.windows.ends - 1 - data.windows.starts).sum())
    secs = []
    for epoch in range(1, epochs + 1):
        t = time.perf_counter()
        train_epoch(model, opt, data, tcfg, epoch)
        secs.append(time.perf_counter() - t)
    t = time.perf_counter()
    model_ranks(model, data, "test", tcfg.eval_batch_size)
    eval_s = time.perf_counter() - t
    epoch_s = float(np.median(secs))
    return {
        "kind": mcfg.kind,
        "parameters": sum(p.numel() for p in model.parameters()),
        "threads": torch.get_num_threads(),
        "data_load_seconds": load_s,
        "seconds_per_epoch": epoch_s,
        "epoch_seconds": secs,
        "sequences_per_second": len(data.windows) / epoch_s,
        "tokens_per_second": tokens / epoch_s,
        "eval_seconds": eval_s,
        "eval_users_per_second": len(data.test) / eval_s,
        "peak_rss_mib": _rss_mib(),
        "rss_after_data_mib": rss_data,
        "data": data.summary(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="user_sequences .parquet or RecBole .inter")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--model", default="{}", help="JSON overrides of ModelConfig (both kinds)")
    p.add_argument("--train", default="{}", help="JSON overrides of TrainConfig")
    p.add_argument("--threads", type=int, help="torch threads (default: every available core)")
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args()
    mcfg = ModelConfig(**json.loads(a.model))
    tcfg = replace(TrainConfig(**json.loads(a.train)), num_threads=a.threads)
    load_before = os.getloadavg()
    results = {}
    ctx = mp.get_context("spawn")
    for kind in ("hstu", "sasrec"):
        with ctx.Pool(1) as pool:
            args = (a.data, replace(mcfg, kind=kind), tcfg, a.epochs)
            results[kind] = pool.apply(_measure, args)
    h, s = results["hstu"], results["sasrec"]
    report = {
        "data_path": str(a.data),
        "data": h.pop("data"),
        "model_config": mcfg.to_dict(),
        "train_config": tcfg.to_dict(),
        "epochs_timed": a.epochs,
        "machine": {
            "cores": available_cores(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "results": results,
        "ratios_hstu_over_sasrec": {
            k: h[k] / s[k]
            for k in ("seconds_per_epoch", "tokens_per_second", "eval_seconds", "peak_rss_mib")
        },
    }
    s.pop("data")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    rows = [
        ("parameters", "{:,.0f}"),
        ("seconds_per_epoch", "{:.2f}"),
        ("sequences_per_second", "{:,.0f}"),
        ("tokens_per_second", "{:,.0f}"),
        ("eval_seconds", "{:.2f}"),
        ("peak_rss_mib", "{:,.0f}"),
    ]
    print(f"data: {report['data']}")
    print(f"load average before/after: {load_before} / {report['machine']['load_average_after']}")
    print("| figure | hstu | sasrec | hstu/sasrec |\n| --- | --- | --- | --- |")
    for key, fmt in rows:
        print(f"| {key} | {fmt.format(h[key])} | {fmt.format(s[key])} | {h[key] / s[key]:.2f} |")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
