"""Latency of online reward scoring: the full `OnlineScorer.score` call (Feast online read of the
user's and the candidates' features and the user's recent history, frozen-encoder pass, K-member
heads) for 1 and for 100 candidates; p50 and p99 over many calls, with the Feast read and the
model part timed apart.

    python -m benchmarks.reward_scoring_latency --calls 300

Needs a data directory where the reward_model and online_features assets have run
(ASFT_DATA_DIR). Users and candidates are drawn at random from the model's vocabulary. Writes
benchmarks/results/reward_scoring_latency.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.paths import data_dir
from training.reward.online import OnlineScorer

OUT = Path(__file__).resolve().parent / "results" / "reward_scoring_latency.json"


def _quantiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "mean_ms": round(float(a.mean()), 3),
    }


def measure(scorer: OnlineScorer, n_candidates: int, calls: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    users, items = scorer.model.vocab.users.ids, scorer.model.vocab.items.ids
    full, fetch, model = [], [], []
    for i in range(calls + 5):  # the first 5 calls warm caches and are not counted
        user = users[rng.integers(len(users))]
        cands = [items[j] for j in rng.choice(len(items), n_candidates, replace=False)]
        t0 = time.perf_counter()
        out = scorer.score(user, cands)
        t1 = time.perf_counter()
        feats = scorer.features(user, cands)
        t2 = time.perf_counter()
        scorer.score_features(user, cands, feats)
        t3 = time.perf_counter()
        if len(out) != n_candidates:
            raise RuntimeError(f"scored {len(out)} of {n_candidates} candidates")
        if i >= 5:
            full.append((t1 - t0) * 1e3)
            fetch.append((t2 - t1) * 1e3)
            model.append((t3 - t2) * 1e3)
    return {
        "candidates": n_candidates,
        "calls": calls,
        "full_call": _quantiles(full),
        "feast_online_read": _quantiles(fetch),
        "encode_and_heads": _quantiles(model),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--candidates", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    root = data_dir()
    load_before = round(os.getloadavg()[0], 2)
    t0 = time.perf_counter()
    scorer = OnlineScorer.from_root(root)
    load_s = time.perf_counter() - t0
    rows = [measure(scorer, n, args.calls, args.seed) for n in args.candidates]
    result = {
        "data_dir": str(root),
        "members": scorer.model.n_members,
        "catalogue": scorer.model.n_items,
        "history_max_len": scorer.max_len,
        "online_store": getattr(scorer._store().config.online_store, "type", "?"),
        "load_seconds": round(load_s, 2),
        "torch_threads": args.threads,
        # The machine is shared: the 1-minute load average before and after says how busy it was.
        "load_average_1min": {"before": load_before, "after": round(os.getloadavg()[0], 2)},
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'candidates':>10} | {'full p50':>9} | {'full p99':>9} | {'feast p50':>9} | model p50")
    for r in rows:
        print(
            f"{r['candidates']:>10} | {r['full_call']['p50_ms']:>7.2f}ms | "
            f"{r['full_call']['p99_ms']:>7.2f}ms | {r['feast_online_read']['p50_ms']:>7.2f}ms | "
            f"{r['encode_and_heads']['p50_ms']:.2f}ms"
        )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
