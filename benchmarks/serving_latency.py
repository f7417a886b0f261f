"""Serving latency and throughput, side by side in one run: one user's top-10 in process, through
the served endpoint and through the recommend command's Feast path (p50/p99), the recommend
command as a fresh process, and batch users per second.

    ASFT_DATA_DIR=/abs/data python -m benchmarks.serving_latency --calls 200

Needs a data directory after `make run` (the policy in MLflow, the online store, the reward
ensemble). Paths, on the same users drawn with a seeded generator, taking turns call by call (the
order rotates) so a change in the machine's load hits all alike:
- in_process: the pyfunc model's predict on the user's history (already read from Feast);
- endpoint: POST /invocations to `mlflow models serve` of the same model (HTTP, JSON, signature);
- recommend_feast: what `asft recommend` does per user once loaded: Feast history read, predict,
  Feast title read, reward ensemble r_hat.
The cold command (process start, imports, loading) and batch throughput (the model's predict
over every user's whole history, 512 a call) are timed apart. torch uses one thread everywhere.
Writes benchmarks/results/serving_latency.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from common.paths import data_dir
from training.serving.batch import active_requests
from training.serving.online import OnlineRecommender
from training.serving.server import model_server

OUT = Path(__file__).resolve().parent / "results" / "serving_latency.json"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
K = 10


def _ms(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples) * 1e3
    return {"p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2), "calls": int(a.size)}  # fmt: skip


def _post(url: str, record: dict[str, Any]) -> list[str]:
    body = json.dumps({"dataframe_records": [record], "params": {"k": K}}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as response:
        return json.loads(response.read())["predictions"][0]["item_ids"]


def _paths(online: OnlineRecommender, url: str, user: str, record: dict[str, Any],
           at: float) -> dict[str, Any]:  # fmt: skip
    """One user's call on each path, each returning the titles."""
    frame = pd.DataFrame({k: [v] for k, v in record.items()})
    return {
        "in_process": lambda: list(online.model.predict(frame, {"k": K})["item_ids"][0]),
        "endpoint": lambda: _post(url, record),
        "recommend_feast": lambda: online.recommend(user, K, at).titles["item_id"].tolist(),
    }


def per_user(online: OnlineRecommender, url: str, users: list[str], calls: int, at: float,
             seed: int) -> dict[str, dict[str, float]]:  # fmt: skip
    from features.online import online_user_features

    rng = np.random.default_rng(seed)
    times: dict[str, list[float]] = {"in_process": [], "endpoint": [], "recommend_feast": []}
    for i in range(calls + 5):  # the first 5 calls warm caches and are not counted
        user = users[rng.integers(len(users))]
        history = online_user_features(online.store, user)["history"]
        record = {"item_ids": list(history["recent_item_ids"]), "request_ts": at,
                  "timestamps": [float(t) for t in history["recent_event_ts"]]}  # fmt: skip
        calls_of = _paths(online, url, user, record, at)
        names = list(calls_of)
        names = names[i % 3 :] + names[: i % 3]  # rotate who goes first
        answers = {}
        for name in names:
            start = time.perf_counter()
            answers[name] = calls_of[name]()
            if i >= 5:
                times[name].append(time.perf_counter() - start)
        if len({tuple(a) for a in answers.values()}) != 1:
            raise RuntimeError(f"the paths disagree for {user}: {answers}")
    return {name: _ms(t) for name, t in times.items()}


def cold_command(root: Path, user: str, runs: int, at: float) -> dict[str, float]:
    """`python -m training.serving.cli recommend` (what `asft recommend` runs), start to exit."""
    env = os.environ | ONE_THREAD | {"ASFT_DATA_DIR": str(root)}
    cmd = [sys.executable, "-m", "training.serving.cli", "recommend", "--user", user,
           "--k", str(K), "--at", str(at)]  # fmt: skip
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
        seconds.append(time.perf_counter() - start)
    return _ms(seconds)


def batch_throughput(online: OnlineRecommender, root: Path, rounds: int) -> dict[str, float]:
    _, frame = active_requests(root, active_days=1e9)  # every user
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for lo in range(0, len(frame), 512):
            online.model.predict(frame.iloc[lo : lo + 512].reset_index(drop=True), {"k": K})
        rates.append(len(frame) / (time.perf_counter() - start))
    return {"users": len(frame), "users_per_s": round(float(np.median(rates)), 1),
            "rounds": rounds}  # fmt: skip


def markdown(r: dict[str, Any]) -> str:
    what = {
        "in_process": "pyfunc predict, history already read",
        "endpoint": "POST /invocations to `mlflow models serve` (HTTP, JSON, signature)",
        "recommend_feast": "Feast history read + predict + Feast title read + r_hat",
        "command_cold": "`asft recommend` as a fresh process (imports, loads, one call)",
    }
    lines = [
        f"Serving latency, top-{K} for one user ({r['model']}; {r['users']} users, "
        f"{r['catalogue']} titles); load average before {r['load_before']}, after "
        f"{r['load_after']} on {r['cpus']} CPUs; torch 1 thread.",
        "",
        "| path | what is timed | p50 ms | p99 ms | calls |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name, doc in what.items():
        m = r["latency"][name]
        lines.append(f"| {name} | {doc} | {m['p50_ms']} | {m['p99_ms']} | {m['calls']} |")
    b = r["batch"]
    lines += ["", f"Batch: {b['users_per_s']} users/s (pyfunc predict over {b['users']} users' "
              f"whole histories, 512 a call; median of {b['rounds']} rounds)."]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="timed calls per path")
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh recommend processes")
    parser.add_argument("--batch-rounds", type=int, default=3)
    parser.add_argument("--model-name", default="asft-recommender")
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    root = data_dir()
    load_before = [round(x, 2) for x in os.getloadavg()]
    online = OnlineRecommender(root, args.model_name, args.alias)
    users, frame = active_requests(root, active_days=1e9)
    at = float(frame["request_ts"].max()) if len(frame) else time.time()
    with model_server(root, online.served.uri, env=ONE_THREAD) as url:
        latency = per_user(online, url, users, args.calls, at, args.seed)
    latency["command_cold"] = cold_command(root, users[0], args.cold_runs, at)
    report = {
        "model": f"{online.served.name} {online.served.version}",
        "users": len(users),
        "catalogue": len(online.model.unwrap_python_model().recommender.items),
        "latency": latency,
        "batch": batch_throughput(online, root, args.batch_rounds),
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "command": "python -m benchmarks.serving_latency " + " ".join(argv or sys.argv[1:]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))


if __name__ == "__main__":
    main()
