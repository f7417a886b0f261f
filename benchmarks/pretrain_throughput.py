"""Pretraining throughput, HSTU vs SASRec side by side, on ML-100K and on the default simulator
data: sequences/s, tokens/s, seconds per epoch (wall and CPU), peak RSS and full-ranking
evaluation time. Each (dataset, kind) runs in its own fresh process, so one run's peak memory
never counts towards another's.

    python -m benchmarks.pretrain_throughput                      # ml-100k and simulator
    python -m benchmarks.pretrain_throughput --data ml-100k.inter --threads 1

`ml-100k` means the file `make ml100k` fetches; `simulator` means `simulate(SimulatorConfig())`
(1M events) turned into user sequences in-process, without the dbt warehouse. Each dataset is
trained with the configuration its pipeline run uses: ML-100K with the `ModelConfig` /
`TrainConfig` defaults, the simulator with the `pretrained_policy` asset's default `max_len`.
An epoch with more than `--max-steps` batches (the simulator's) is timed on a random sample of
`--max-steps` batches and extrapolated to the whole epoch; the JSON says so per dataset.

Writes benchmarks/results/pretrain_throughput.json and prints a table per dataset.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.core.config import ModelConfig, TrainConfig
from training.core.data import Split, build_dataset, read_user_sequences
from training.core.evaluate import model_ranks
from training.core.losses import ALL_ITEMS
from training.models import SequenceEncoder
from training.pretrain.loop import available_cores, train_epoch

OUT = Path(__file__).resolve().parent / "results" / "pretrain_throughput.json"
SIMULATOR = "simulator"
ML100K = "ml-100k"


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _measure(
    path: str, mcfg: ModelConfig, tcfg: TrainConfig, epochs: int, max_steps: int
) -> dict[str, Any]:
    """Runs in a child process: load, train `epochs` (possibly sampled) epochs, rank the test
    split once."""
    torch.set_num_threads(tcfg.num_threads or available_cores())
    t0 = time.perf_counter()
    data = build_dataset(read_user_sequences(path), max_len=mcfg.max_len)
    load_s = time.perf_counter() - t0
    rss_data = _rss_mib()
    torch.manual_seed(tcfg.seed)
    model = SequenceEncoder(data.n_items, mcfg)
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, betas=tcfg.betas)
    full = data.windows
    steps_per_epoch = -(-len(full) // tcfg.batch_size)
    sampled = steps_per_epoch > max_steps
    wall, cpu, seqs, tokens = [], [], [], []
    for epoch in range(1, epochs + 1):
        if sampled:  # a random sample of whole batches' worth of windows, new each epoch
            rows = np.random.default_rng(epoch).choice(
                len(full), max_steps * tcfg.batch_size, replace=False
            )
            data.windows = Split(full.starts[rows], full.ends[rows])
        # Real (non-padding) input tokens; padding is work, not throughput.
        tokens.append(int((data.windows.ends - 1 - data.windows.starts).sum()))
        seqs.append(len(data.windows))
        c, t = time.process_time(), time.perf_counter()
        train_epoch(model, opt, data, tcfg, epoch)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    data.windows = full
    c, t = time.process_time(), time.perf_counter()
    model_ranks(model, data, "test", tcfg.eval_batch_size)
    eval_s, eval_cpu = time.perf_counter() - t, time.process_time() - c
    seq_rate = float(np.median(np.divide(seqs, wall)))
    tok_rate = float(np.median(np.divide(tokens, wall)))
    scale = len(full) / float(np.median(seqs))  # 1 when whole epochs were timed
    return {
        "kind": mcfg.kind,
        "parameters": sum(p.numel() for p in model.parameters()),
        "threads": torch.get_num_threads(),
        "data_load_seconds": load_s,
        "steps_per_epoch": steps_per_epoch,
        "steps_timed_per_epoch": min(steps_per_epoch, max_steps),
        "epoch_extrapolated": sampled,
        "seconds_per_epoch": float(np.median(wall)) * scale,
        "cpu_seconds_per_epoch": float(np.median(cpu)) * scale,
        "timed_wall_seconds": wall,
        "timed_cpu_seconds": cpu,
        "sequences_per_second": seq_rate,
        "tokens_per_second": tok_rate,
        # Per CPU second of this process: what survives a machine shared with other jobs.
        "tokens_per_cpu_second": float(np.median(np.divide(tokens, cpu))),
        "eval_seconds": eval_s,
        "eval_cpu_seconds": eval_cpu,
        "eval_users": len(data.test),
        "eval_users_per_second": len(data.test) / eval_s,
        "peak_rss_mib": _rss_mib(),
        "rss_after_data_mib": rss_data,
        "data": data.summary(),
    }


def simulator_sequences(directory: Path) -> Path:
    """The default simulator world as a user_sequences Parquet file (no warehouse: sessions and
    watch-fraction rewards do not change the training work, only ids, times and lengths do)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from training.core.data import sequences_from_interactions
    from watchlogs.config import SimulatorConfig
    from watchlogs.simulator import simulate

    ev = simulate(SimulatorConfig()).events
    seconds = pc.divide(ev["event_ts"].cast(pa.int64()), 1e6)
    table = pa.table(
        {
            "user_id": ev["user_id"],
            "item_id": ev["item_id"],
            "timestamp": seconds,
            "rating": ev["rating"],
        }
    )
    path = directory / "simulator_user_sequences.parquet"
    pq.write_table(sequences_from_interactions(table), path)
    return path


def _configs(name: str, mcfg: ModelConfig, tcfg: TrainConfig) -> tuple[ModelConfig, TrainConfig]:
    """The simulator is trained as the default `make run` does: the asset's max_len and
    TrainConfig overrides (e.g. its number of negatives)."""
    if name != SIMULATOR:
        return mcfg, tcfg
    from training.pretrain.settings import PretrainSettings

    asset = PretrainSettings()
    overrides = {
        k: getattr(asset, k)
        for k in ("num_negatives", "temperature", "lr")
        if getattr(asset, k) is not None
    }
    return replace(mcfg, max_len=asset.max_len), replace(tcfg, **overrides)


def _resolve(name: str, tmp: Path) -> Path:
    if name == SIMULATOR:
        return simulator_sequences(tmp)
    if name == ML100K:
        from watchlogs.fetch_ml100k import FILE_NAME, default_dest

        path = default_dest() / FILE_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run `make ml100k` or pass --data PATH")
        return path
    return Path(name)


def _dataset_name(name: str) -> str:
    return name if name in (SIMULATOR, ML100K) else Path(name).stem


def benchmark(
    name: str, path: Path, mcfg: ModelConfig, tcfg: TrainConfig, epochs: int, max_steps: int
) -> dict[str, Any]:
    results = {}
    ctx = mp.get_context("spawn")
    load_before = os.getloadavg()
    for kind in ("hstu", "sasrec"):
        with ctx.Pool(1) as pool:
            args = (str(path), replace(mcfg, kind=kind), tcfg, epochs, max_steps)
            results[kind] = pool.apply(_measure, args)
    h, s = results["hstu"], results["sasrec"]
    data = h.pop("data")
    s.pop("data")
    return {
        "data_path": str(path),
        "data": data,
        "model_config": mcfg.to_dict(),
        "train_config": tcfg.to_dict(),
        "epochs_timed": epochs,
        "epoch_extrapolated": h["epoch_extrapolated"],
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "results": results,
        "ratios_hstu_over_sasrec": {
            k: h[k] / s[k]
            for k in (
                "seconds_per_epoch",
                "cpu_seconds_per_epoch",
                "tokens_per_second",
                "tokens_per_cpu_second",
                "eval_seconds",
                "peak_rss_mib",
            )
        },
    }


ROWS = (
    ("parameters", "{:,.0f}"),
    ("seconds_per_epoch", "{:.2f}"),
    ("cpu_seconds_per_epoch", "{:.2f}"),
    ("sequences_per_second", "{:,.0f}"),
    ("tokens_per_second", "{:,.0f}"),
    ("tokens_per_cpu_second", "{:,.0f}"),
    ("eval_seconds", "{:.2f}"),
    ("peak_rss_mib", "{:,.0f}"),
)


def _negatives(n: int) -> str:
    return "full softmax (every item a negative)" if n == ALL_ITEMS else f"{n} negatives"


def markdown(name: str, report: dict[str, Any]) -> str:
    h, s = report["results"]["hstu"], report["results"]["sasrec"]
    d = report["data"]
    note = (
        f", epoch extrapolated from {h['steps_timed_per_epoch']} of {h['steps_per_epoch']} batches"
        if report["epoch_extrapolated"]
        else ""
    )
    lines = [
        f"**{name}**: {d['events']:,} events, {d['users']:,} users, {d['items']:,} items, "
        f"max_len {d['max_len']}, {_negatives(report['train_config']['num_negatives'])}, "
        f"{h['threads']} thread(s){note}",
        "",
        "| figure | hstu | sasrec | hstu/sasrec |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key, fmt in ROWS:
        lines.append(
            f"| {key} | {fmt.format(h[key])} | {fmt.format(s[key])} | {h[key] / s[key]:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data",
        nargs="+",
        default=[ML100K, SIMULATOR],
        help="user_sequences .parquet / RecBole .inter paths, `ml-100k` or `simulator`",
    )
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (median reported)")
    p.add_argument("--max-steps", type=int, default=100, help="batches timed per epoch at most")
    p.add_argument("--model", default="{}", help="JSON overrides of ModelConfig (both kinds)")
    p.add_argument("--train", default="{}", help="JSON overrides of TrainConfig")
    p.add_argument("--threads", type=int, help="torch threads (default: every available core)")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument(
        "--replace",
        action="store_true",
        help="drop datasets of an existing --out file that this run does not measure "
        "(default: keep them, so `--data ml-100k` refreshes only the ML-100K rows)",
    )
    a = p.parse_args()
    base = ModelConfig(**json.loads(a.model))
    tcfg = replace(TrainConfig(**json.loads(a.train)), num_threads=a.threads)
    report: dict[str, Any] = {
        "machine": {
            "cores": available_cores(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "datasets": {},
    }
    with tempfile.TemporaryDirectory(prefix="pretrain-bench-") as tmp:
        for entry in a.data:
            name = _dataset_name(entry)
            path = _resolve(entry, Path(tmp))
            mcfg, tc = _configs(entry, base, tcfg)
            entry_report = benchmark(name, path, mcfg, tc, a.epochs, a.max_steps)
            entry_report["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            report["datasets"][name] = entry_report
            print(markdown(name, report["datasets"][name]), flush=True)
            print(flush=True)
    # Datasets not re-measured this time keep their earlier entry (each says when it was taken).
    if a.out.is_file() and not a.replace:
        earlier = json.loads(a.out.read_text()).get("datasets", {})
        report["datasets"] = {**earlier, **report["datasets"]}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
