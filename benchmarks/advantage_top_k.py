"""V(s) over the policy's top-k titles against V(s) over the whole catalogue: time and how far
the advantages move, on a seeded sample of training windows of a data directory where the
reward_model asset has run (ASFT_DATA_DIR).

    python -m benchmarks.advantage_top_k --windows 600 --top-k 1024,512,256,128

For each top_k: seconds, the mean and largest |A_top_k - A_exact| against the spread of A, the
Pearson and rank correlations and the share of targets whose advantage keeps its sign. Writes
benchmarks/results/advantage_top_k.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.process_stats import uptime
from common.layout import DataLayout
from common.paths import data_dir
from training.core.data import Split
from training.posttrain.advantages import compute_advantages
from training.posttrain.inputs import load_ensemble, load_posttrain_inputs
from training.posttrain.settings import AdvantagesSettings

OUT = Path(__file__).resolve().parent / "results" / "advantage_top_k.json"


def _rank(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.advantage_top_k", description=__doc__)
    p.add_argument("--windows", type=int, default=600, help="training windows, sampled (seed 0)")
    p.add_argument("--top-k", default="1024,512,256,128", help="comma-separated top_k values")
    args = p.parse_args(argv)
    root = data_dir()
    inputs = load_posttrain_inputs(root)
    data = inputs.data
    keep = np.sort(np.random.default_rng(0).choice(len(data.windows), args.windows, replace=False))
    data = replace(data, windows=Split(data.windows.starts[keep], data.windows.ends[keep]))
    model = load_ensemble(DataLayout(root).reward_model)
    load = uptime()

    def run(top_k: int | None) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        adv = compute_advantages(inputs.policy, model, data, AdvantagesSettings(top_k=top_k),
                                 temperature=inputs.temperature, log=lambda _: None)  # fmt: skip
        return adv.advantage, time.perf_counter() - t0

    exact, exact_s = run(None)
    has = ~np.isnan(exact)
    a = exact[has]
    rows = [{"top_k": "every title", "seconds": exact_s}]
    for k in (int(x) for x in args.top_k.split(",")):
        approx, seconds = run(k)
        b = approx[has]
        rows.append({
            "top_k": k,
            "seconds": seconds,
            "mean_abs_diff": float(np.abs(b - a).mean()),
            "max_abs_diff": float(np.abs(b - a).max()),
            "pearson": float(np.corrcoef(a, b)[0, 1]),
            "spearman": float(np.corrcoef(_rank(a), _rank(b))[0, 1]),
            "same_sign": float(np.mean(np.sign(a) == np.sign(b))),
        })  # fmt: skip
    report = {
        "windows": args.windows,
        "targets": int(has.sum()),
        "titles": data.n_items,
        "std_advantage": float(a.std()),
        "threads": torch.get_num_threads(),
        "load": load,
        "rows": rows,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['targets']:,} targets, {data.n_items:,} titles, std(A) "
          f"{report['std_advantage']:.4f}; {load}")  # fmt: skip
    print("| V(s) over | seconds | mean abs dA | max abs dA | Pearson | Spearman | same sign |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        if "pearson" not in r:
            print(f"| {r['top_k']} | {r['seconds']:.1f} | - | - | - | - | - |")
            continue
        print(f"| top {r['top_k']} | {r['seconds']:.1f} | {r['mean_abs_diff']:.4f} | "
              f"{r['max_abs_diff']:.4f} | {r['pearson']:.4f} | {r['spearman']:.4f} | "
              f"{r['same_sign']:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
