"""Advantages over the whole catalogue: the members'-mean path (`score_catalogue_mean`, what the
`advantages` asset uses) against two contenders, side by side on the same windows, alternating,
each repeat in a fresh process (so its peak RSS is its own):

- `k_members`: the mean taken over `score_catalogue`'s [K, B, L, N], held;
- `whole_batch_passes`: the asset's path with every [targets, titles] pass over the whole batch
  at once (`ROWS_PER_PASS` unbounded), as before the passes went a few hundred targets at a time.

Reports training targets per second and peak RSS of each, their ratios to the asset's path, and
the largest difference between each contender's result and the asset's.

    python -m benchmarks.advantage_throughput --windows 1024 --repeats 2

Needs a data directory where the reward_model asset has run (ASFT_DATA_DIR). Writes
benchmarks/results/advantage_throughput.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import training.posttrain.advantages as advantages_module
from common.layout import DataLayout
from common.paths import data_dir
from training.posttrain.advantages import EventAdvantages, compute_advantages
from training.posttrain.inputs import load_ensemble, load_posttrain_inputs
from training.posttrain.settings import AdvantagesSettings

OUT = Path(__file__).resolve().parent / "results" / "advantage_throughput.json"
PATHS = ("members_mean", "k_members", "whole_batch_passes")
UNBOUNDED = 1 << 62


class KMemberPath:
    """The ensemble with its members' mean and logged-action scores taken from the [K, B, L, N]
    `score_catalogue` tensor: the path without the one-member-at-a-time mean."""

    def __init__(self, model: Any) -> None:
        self.n_members, self.n_items = model.n_members, model.n_items
        self.score_catalogue = model.score_catalogue

    def score_catalogue_mean(self, *state: torch.Tensor) -> torch.Tensor:
        return self.score_catalogue(*state).mean(0)

    def score_items(self, *state_and_candidates: torch.Tensor) -> torch.Tensor:
        *state, candidates = state_and_candidates
        r = self.score_catalogue(*state)
        return r.gather(-1, candidates.expand(len(r), -1, -1, -1))


def _first_windows(data: Any, n: int) -> Any:
    w = data.windows
    cut = {
        f.name: getattr(w, f.name)[:n]
        for f in fields(w)
        if isinstance(getattr(w, f.name), np.ndarray)
    }
    return replace(data, windows=replace(w, **cut))


def _run(path: str, windows: int, batch_size: int, threads: int) -> dict[str, Any]:
    """One timed pass in this (fresh) process: seconds, peak RSS and the advantages."""
    torch.set_num_threads(threads)
    inputs = load_posttrain_inputs(data_dir())
    model = load_ensemble(DataLayout(data_dir()).reward_model)
    data = _first_windows(inputs.data, windows) if windows else inputs.data
    reward_model = KMemberPath(model) if path == "k_members" else model
    if path == "whole_batch_passes":
        advantages_module.ROWS_PER_PASS = UNBOUNDED  # this worker process only
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    adv = compute_advantages(
        inputs.policy, reward_model, data, AdvantagesSettings(batch_size=batch_size),
        temperature=inputs.temperature, log=lambda _: None,
    )  # fmt: skip
    return {
        "seconds": time.perf_counter() - t0,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mib": rss0 / 1024,
        "windows": len(data.windows),
        "catalogue": data.n_items,
        "members": model.n_members,
        "advantages": adv,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--windows", type=int, default=1024, help="training windows timed (0 = all)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    spawn = multiprocessing.get_context("spawn")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in PATHS}
    load_before = os.getloadavg()[0]
    for _ in range(args.repeats):
        for name in PATHS:
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                job = pool.submit(_run, name, args.windows, args.batch_size, args.threads)
                runs[name].append(job.result())
    first = runs[PATHS[0]][0]
    results = {name: runs[name][0]["advantages"] for name in PATHS}
    asset = results[PATHS[0]]
    targets = int(np.isfinite(asset.advantage).sum())
    best = {name: min(r["seconds"] for r in rs) for name, rs in runs.items()}
    rss = {name: max(r["peak_rss_mib"] for r in rs) for name, rs in runs.items()}
    diff = {
        name: {
            f.name: float(np.nanmax(np.abs(getattr(asset, f.name) - getattr(other, f.name))))
            for f in fields(EventAdvantages)
        }
        for name, other in results.items()
        if name != PATHS[0]
    }
    out = {
        "data_dir": str(data_dir()),
        "windows": first["windows"],
        "training_targets": targets,
        "catalogue": first["catalogue"],
        "members": first["members"],
        "batch_size": args.batch_size,
        "torch_threads": args.threads,
        "load_average_1min": {
            "before": round(load_before, 2),
            "after": round(os.getloadavg()[0], 2),
        },
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "seconds_best": {k: round(v, 2) for k, v in best.items()},
        "seconds_all": {k: [round(r["seconds"], 2) for r in v] for k, v in runs.items()},
        "targets_per_second": {k: round(targets / v, 1) for k, v in best.items()},
        "peak_rss_mib": {k: round(v, 1) for k, v in rss.items()},
        # > 1: the asset's path is that many times faster / smaller than the contender.
        "seconds_ratio_to_members_mean": {
            name: round(best[name] / best[PATHS[0]], 2) for name in PATHS[1:]
        },
        "peak_rss_ratio_to_members_mean": {
            name: round(rss[name] / rss[PATHS[0]], 2) for name in PATHS[1:]
        },
        "max_abs_difference_from_members_mean": diff,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(
        "| path | best s | targets / s | peak RSS MiB | seconds / asset's | max abs dA |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: |"
    )
    for name in PATHS:
        ratio = out["seconds_ratio_to_members_mean"].get(name, 1.0)
        d = diff[name]["advantage"] if name in diff else 0.0
        print(
            f"| {name} | {best[name]:.2f} | {out['targets_per_second'][name]:,.0f} | "
            f"{rss[name]:,.0f} | {ratio:.2f} | {d:.1e} |"
        )


if __name__ == "__main__":
    main()
