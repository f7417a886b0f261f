"""Online feature reads, Feast vs a direct sqlite read of the same rows: p50/p99 latency.

    ASFT_DATA_DIR=/abs/data python -m benchmarks.feature_latency --repeats 2000

Needs a materialized online store (the `online_features` asset) under the data directory. Cases,
each on real users and titles drawn with a seeded generator:

- user: one user's reward statistics and recent history (Feast: one get_online_features call
  over user_reward_stats + user_recent_history; direct: one SELECT per view);
- titles_1 / titles_100: the reward statistics of 1 / 100 candidate titles;
- user_and_titles_100: both, i.e. what the reward model's online scoring path reads per request.

Feast and the direct read alternate call by call on the same keys, so both see the same load;
every pair of answers is compared (they must be equal). Writes
benchmarks/results/feature_latency.json (latencies in ms, ratios Feast / direct) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parent / "results" / "feature_latency.json"
TARGET_P99_MS = 10.0  # one user's features


def _keys(root: Path) -> tuple[list[str], list[str]]:
    import pyarrow.parquet as pq

    from features.export import ITEM_STATS, RECENT_HISTORY, offline_path

    users = pq.read_table(offline_path(RECENT_HISTORY, root), columns=["user_id"])["user_id"]
    items = pq.read_table(offline_path(ITEM_STATS, root), columns=["item_id"])["item_id"]
    return sorted(set(users.to_pylist())), sorted(set(items.to_pylist()))


def _summary(ns: list[int]) -> dict[str, float]:
    ms = np.asarray(ns, dtype=np.float64) / 1e6
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
        "calls": int(ms.size),
    }


def run_case(
    feast_call: Callable[[Any], Any],
    direct_call: Callable[[Any], Any],
    args_for: Callable[[int], Any],
    repeats: int,
    warmup: int,
) -> dict[str, Any]:
    sides = ("feast", "direct_sqlite")
    wall: dict[str, list[int]] = {name: [] for name in sides}
    cpu: dict[str, list[int]] = {name: [] for name in sides}
    mismatches = 0
    for i in range(warmup + repeats):
        arg = args_for(i)
        # Alternate which side goes first, so neither always reads a cache the other warmed.
        order = (("feast", feast_call), ("direct_sqlite", direct_call))
        answers = {}
        for name, call in order if i % 2 == 0 else order[::-1]:
            start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
            answers[name] = call(arg)
            elapsed, elapsed_cpu = time.perf_counter_ns() - start, time.thread_time_ns() - start_cpu
            if i >= warmup:
                wall[name].append(elapsed)
                cpu[name].append(elapsed_cpu)
        mismatches += answers["feast"] != answers["direct_sqlite"]
    # Wall latency is what a caller waits; CPU time (this thread's) shows the cost of the read
    # itself when other jobs share the cores.
    result: dict[str, Any] = {name: _summary(wall[name]) for name in sides}
    for name in sides:
        result[name]["cpu"] = _summary(cpu[name])
    result["ratio_feast_over_direct"] = {
        q: result["feast"][q] / result["direct_sqlite"][q] for q in ("p50_ms", "p99_ms")
    }
    result["cpu_ratio_feast_over_direct"] = {
        q: result["feast"]["cpu"][q] / result["direct_sqlite"]["cpu"][q]
        for q in ("p50_ms", "p99_ms")
    }
    result["mismatched_answers"] = int(mismatches)
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, help="default: ASFT_DATA_DIR or data/")
    p.add_argument("--repeats", type=int, default=1000, help="timed calls per case and side")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--candidates", type=int, nargs="+", default=[1, 100])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args(argv)

    if a.data_dir:
        os.environ["ASFT_DATA_DIR"] = str(a.data_dir.resolve())
    from common.paths import data_dir
    from features.online import (
        DirectSqliteReader,
        online_item_features,
        online_user_features,
    )
    from features.store import PROJECT, feature_store, online_db_path

    root = data_dir()
    store = feature_store(root)
    if store.config.online_store.type != "sqlite":
        sys.exit(f"the direct read needs the sqlite online store, not {store.config.online_store}")
    reader = DirectSqliteReader(online_db_path(root), project=PROJECT)
    users, items = _keys(root)
    rng = np.random.default_rng(a.seed)
    n = a.warmup + a.repeats
    user_picks = [users[j] for j in rng.integers(0, len(users), n)]
    item_picks = {
        k: [[items[j] for j in rng.choice(len(items), k, replace=False)] for _ in range(n)]
        for k in a.candidates
    }
    print(
        f"{len(users):,} users, {len(items):,} titles online; {a.repeats} calls per case and side"
    )

    cases: dict[str, Any] = {}
    cases["user"] = run_case(
        lambda u: online_user_features(store, u),
        reader.user_features,
        lambda i: user_picks[i],
        a.repeats,
        a.warmup,
    )
    for k in a.candidates:
        cases[f"titles_{k}"] = run_case(
            lambda ids: online_item_features(store, ids),
            reader.item_features,
            lambda i, k=k: item_picks[k][i],
            a.repeats,
            a.warmup,
        )
    k_max = max(a.candidates)
    cases[f"user_and_titles_{k_max}"] = run_case(
        lambda arg: {
            **online_user_features(store, arg[0]),
            "items": online_item_features(store, arg[1]),
        },
        lambda arg: reader.reward_features(arg[0], arg[1]),
        lambda i: (user_picks[i], item_picks[k_max][i]),
        a.repeats,
        a.warmup,
    )
    reader.close()

    import feast

    user_p99 = cases["user"]["feast"]["p99_ms"]
    out = {
        "what": "online feature reads: Feast get_online_features (sqlite online store) vs a direct "
        "sqlite SELECT + protobuf decode of the same rows, alternating call by call",
        "command": " ".join(
            [Path(sys.executable).name, "-m", "benchmarks.feature_latency", *sys.argv[1:]]
        ),
        "cases": cases,
        "target": {
            "user_feast_p99_ms_below": TARGET_P99_MS,
            "user_feast_p99_ms": user_p99,
            "met": user_p99 < TARGET_P99_MS,
        },
        "online_entities": {"users": len(users), "titles": len(items)},
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "feast": feast.__version__,
            "load_average_after": os.getloadavg(),
        },
        "repeats": a.repeats,
        "warmup": a.warmup,
        "seed": a.seed,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n")
    print(
        "\n| case | Feast p50 / p99 ms | direct p50 / p99 ms | ratio p50 / p99 "
        "| Feast CPU p50 / p99 ms | direct CPU p50 / p99 ms | CPU ratio p50 | equal |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, c in cases.items():
        f, d, r = c["feast"], c["direct_sqlite"], c["ratio_feast_over_direct"]
        print(
            f"| {name} | {f['p50_ms']:.3f} / {f['p99_ms']:.3f} "
            f"| {d['p50_ms']:.3f} / {d['p99_ms']:.3f} | {r['p50_ms']:.1f} / {r['p99_ms']:.1f} "
            f"| {f['cpu']['p50_ms']:.3f} / {f['cpu']['p99_ms']:.3f} "
            f"| {d['cpu']['p50_ms']:.3f} / {d['cpu']['p99_ms']:.3f} "
            f"| {c['cpu_ratio_feast_over_direct']['p50_ms']:.1f} "
            f"| {'yes' if not c['mismatched_answers'] else c['mismatched_answers']} |"
        )
    print(f"load average after: {out['machine']['load_average_after']}\nwrote {a.out}")


if __name__ == "__main__":
    main()
