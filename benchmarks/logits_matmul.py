"""The full softmax's logits matmul in float32 vs bfloat16 (`TrainConfig.logits_matmul`), side by
side on ML-100K with the HSTU recipe of `configs/ml-100k.yaml`: seconds per epoch, wall and CPU.
Each dtype trains in its own fresh process, the two alternating `--rounds` times, so a change in
the machine's load hits both; the ratio is the median of the per-round ratios.

    python -m benchmarks.logits_matmul --data ml-100k.inter --threads 2

Writes benchmarks/results/logits_matmul.json and prints a table.
"""

from __future__ import annotations

import argparse
import os
import platform
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.pretrain_throughput import ML100K, _measure, _resolve
from benchmarks.side_by_side import alternate, round_ratios, save
from training.core.config import ModelConfig, TrainConfig

OUT = Path(__file__).resolve().parent / "results" / "logits_matmul.json"
DTYPES = ("float32", "bfloat16")


def _cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if "flags" in ln), [])
    return sorted(f for f in flags if "bf16" in f or f.startswith("amx"))


def benchmark(
    path: Path, mcfg: ModelConfig, tcfg: TrainConfig, epochs: int, rounds: int
) -> dict[str, Any]:
    load_before = os.getloadavg()
    runs = alternate(
        _measure,
        lambda dtype: (str(path), mcfg, replace(tcfg, logits_matmul=dtype), epochs, 10**9),
        DTYPES,
        rounds,
    )
    for r in (r for rs in runs.values() for r in rs):
        r.pop("data")

    def med(dtype: str, key: str) -> float:
        return float(np.median([r[key] for r in runs[dtype]]))

    ratios = round_ratios(runs, "bfloat16", "float32", "seconds_per_epoch")
    return {
        "data_path": str(path),
        "model_config": mcfg.to_dict(),
        "train_config": tcfg.to_dict(),
        "epochs_timed_per_run": epochs,
        "rounds": rounds,
        "cpu": platform.processor() or platform.machine(),
        "cpu_bf16_flags": _cpu_flags(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "summary": {
            d: {k: med(d, k) for k in ("seconds_per_epoch", "cpu_seconds_per_epoch")}
            for d in DTYPES
        },
        "bf16_over_f32_seconds_per_epoch": float(np.median(ratios)),
        "per_round_ratios": ratios,
        "runs": runs,
    }


def markdown(report: dict[str, Any]) -> str:
    s = report["summary"]
    lines = [
        f"threads {report['runs']['float32'][0]['threads']}, {report['rounds']} rounds x "
        f"{report['epochs_timed_per_run']} epochs, CPU bf16 flags: "
        f"{', '.join(report['cpu_bf16_flags']) or 'none'}",
        "",
        "| logits matmul | s / epoch | CPU s / epoch |",
        "| --- | ---: | ---: |",
    ]
    for d in DTYPES:
        lines.append(
            f"| {d} | {s[d]['seconds_per_epoch']:.2f} | {s[d]['cpu_seconds_per_epoch']:.2f} |"
        )
    lines.append(f"\nbf16 / f32 seconds per epoch: {report['bf16_over_f32_seconds_per_epoch']:.2f}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=ML100K, help="ml-100k (the fetched file) or a path")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs per run (median)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, help="torch threads (default: every available core)")
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args()
    # The tuned ML-100K recipe (configs/ml-100k.yaml): full softmax, decision-time queries.
    mcfg = ModelConfig(kind="hstu", query_time="decision")
    tcfg = TrainConfig(num_threads=a.threads)
    report = benchmark(_resolve(a.data, Path(".")), mcfg, tcfg, a.epochs, a.rounds)
    save(report, a.out, markdown)


if __name__ == "__main__":
    main()
