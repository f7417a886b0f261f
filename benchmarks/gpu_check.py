"""GPU check: pretraining, advantages and a small post-training study on a small simulator world,
on CUDA and on the CPU, throughput side by side (a Markdown table).

    python -m benchmarks.gpu_check                       # 200k events, 2000 users, 1500 titles
    python -m benchmarks.gpu_check --events 1000000 --users 6000 --items 3500   # the default world

Each stage runs with its `device` option (training/core/device.py) set to "cuda", then "cpu", on
the same data, seeds and settings. The reward ensemble is untrained (random heads on the
pretrained encoder, simple point-in-time count/mean features): advantages cost the same whatever
its weights. Without a CUDA GPU it prints one line saying so and exits 0.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

import torch

NO_GPU = (
    "gpu_check: no CUDA GPU visible to torch {version} (CUDA build: {cuda}); nothing to compare"
)


@dataclass
class Rate:
    stage: str
    unit: str
    seconds: dict[str, float]  # device -> wall seconds
    work: float  # units of work done by each run

    def per_second(self, device: str) -> float:
        return self.work / self.seconds[device]


def world(n_events: int, n_users: int, n_items: int) -> tuple[Any, Any]:
    """The simulator's logs as a temporal-split `SequenceData` (last 10% / 5% of the window as
    valid / test) and point-in-time user and item features for the reward heads."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from training.core.data import build_dataset, sequences_from_interactions
    from training.reward.features import FeatureTables, day_stamps
    from watchlogs.config import SimulatorConfig
    from watchlogs.simulator import simulate

    cfg = SimulatorConfig(n_users=n_users, n_items=n_items, n_events=n_events, n_days=60)
    ev = simulate(cfg).events
    seconds = pc.divide(ev["event_ts"].cast(pa.int64()), 1e6)
    frac = pc.divide(ev["watch_seconds"], ev["item_duration_seconds"])
    reward = pc.add(1.0, pc.multiply(4.0, pc.min_element_wise(pc.max_element_wise(frac, 0), 1)))
    table = pa.table({"user_id": ev["user_id"], "item_id": ev["item_id"], "timestamp": seconds,
                      "rating": pc.coalesce(ev["rating"].cast(pa.float64()), reward)})  # fmt: skip
    t = seconds.to_numpy()
    lo, hi = float(t.min()), float(t.max())
    data = build_dataset(
        sequences_from_interactions(table), max_len=50, split="temporal",
        valid_start=lo + 0.85 * (hi - lo), test_start=lo + 0.95 * (hi - lo),
    )  # fmt: skip
    stamps = day_stamps(lo, hi)
    e = data.events
    days = np.searchsorted(stamps, e.timestamps, side="right")  # the first stamp after each event
    tables = []
    for ids, n in ((e.users[e.row_of_event], len(data.vocab.users)), (e.items, data.n_items)):
        count = np.zeros((len(stamps) + 1, n + 1), np.float32)
        total = np.zeros_like(count)
        np.add.at(count, (days, ids), 1.0)
        np.add.at(total, (days, ids), np.nan_to_num(e.rewards, nan=3.0))
        count, total = count.cumsum(0), total.cumsum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            tables.append(np.stack([total / count, count], axis=-1))
    names = (["user_reward_mean", "user_n_events"], ["item_reward_mean", "item_n_events"])
    return data, FeatureTables(stamps, tables[0], tables[1], *names)


class _Clock:
    """Wall seconds of a block, the GPU's queued work included."""

    def __enter__(self) -> _Clock:
        self._sync()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self._sync()
        self.seconds = time.perf_counter() - self.t0

    @staticmethod
    def _sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()


def measure(
    data: Any, tables: Any, epochs: int, steps: int, devices: tuple[str, ...] = ("cuda", "cpu")
) -> list[Rate]:
    """Each stage on each device, same data, seeds and settings; wall seconds per stage."""
    from training.core.config import ModelConfig, TrainConfig
    from training.posttrain.advantages import compute_advantages
    from training.posttrain.inputs import PosttrainInputs
    from training.posttrain.settings import AdvantagesSettings, PosttrainSettings
    from training.posttrain.study import train_policies
    from training.pretrain.loop import pretrain
    from training.reward.model import HeadConfig, RewardEnsemble

    quiet = lambda _: None  # noqa: E731
    mcfg, tcfg = ModelConfig(max_len=50), TrainConfig(epochs=epochs, patience=epochs)
    study = PosttrainSettings(methods=("bc", "asft"), betas=(1.0,), seeds=(0,), steps=steps)
    seconds: dict[str, dict[str, float]] = {"pretrain": {}, "advantages": {}, "posttrain": {}}
    for device in devices:
        with _Clock() as clock:
            policy = pretrain(data, mcfg, tcfg, None, quiet, device=device).model
        seconds["pretrain"][device] = clock.seconds
        # On a copy: the ensemble freezes its encoder, and post-training trains the policy.
        ensemble = RewardEnsemble(copy.deepcopy(policy), data.vocab, tables, HeadConfig(), 3.0)
        with _Clock() as clock:
            adv = compute_advantages(policy.eval(), ensemble.eval(), data,
                                     AdvantagesSettings(device=device),
                                     temperature=tcfg.temperature, log=quiet)  # fmt: skip
        seconds["advantages"][device] = clock.seconds
        inputs = PosttrainInputs(policy, {"train_config": tcfg.to_dict()}, data)
        with _Clock() as clock:
            train_policies(inputs, replace(study, device=device), adv, ensemble, quiet)
        seconds["posttrain"][device] = clock.seconds
    targets = data.summary()["train_targets"]
    runs = len(study.configurations()) * len(study.seeds)
    return [
        Rate(
            "pretraining (+ validation)", "train targets/s", seconds["pretrain"], targets * epochs
        ),
        Rate("advantages", "train targets/s", seconds["advantages"], targets),
        Rate("post-training (bc, asft@1)", "steps/s", seconds["posttrain"], runs * steps),
    ]


def markdown(rates: list[Rate], title: str) -> str:
    lines = [
        title,
        "",
        "| stage | throughput | CPU | CUDA | CUDA / CPU |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rates:
        cpu, gpu = r.per_second("cpu"), r.per_second("cuda")
        lines.append(f"| {r.stage} | {r.unit} | {cpu:,.1f} | {gpu:,.1f} | {gpu / cpu:.1f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--users", type=int, default=2_000)
    p.add_argument("--items", type=int, default=1_500)
    p.add_argument("--epochs", type=int, default=1, help="pretraining epochs per device")
    p.add_argument("--steps", type=int, default=50, help="post-training steps per run")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print(NO_GPU.format(version=torch.__version__, cuda=torch.version.cuda or "none"))
        return 0
    data, tables = world(args.events, args.users, args.items)
    rates = measure(data, tables, args.epochs, args.steps)
    name = torch.cuda.get_device_name(0)
    targets = data.summary()["train_targets"]
    title = (
        f"**GPU check** ({name} vs {torch.get_num_threads()} CPU threads; {args.events:,} "
        f"events, {data.n_items:,} titles, {targets:,} train targets)"
    )
    print(markdown(rates, title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
