"""The study: every (method, beta, seed) fine-tuned from the pretrained policy, then evaluated,
one MLflow run per policy, and the summary over seeds."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch

from common.tables import finite_metrics
from common.tracking import start_run
from training.core.stats import mean_ci
from training.models import SequenceEncoder
from training.posttrain.advantages import EventAdvantages, with_scored_windows
from training.posttrain.evaluator import METRICS, Evaluator
from training.posttrain.finetune import finetune
from training.posttrain.inputs import PosttrainInputs
from training.posttrain.methods import REGISTRY
from training.posttrain.settings import PosttrainSettings, label_of
from training.reward.contract import CatalogueRewardModel

Log = Callable[[str], None]
EXPERIMENT = "posttrain"
PRETRAINED = "pretrained"


@dataclass
class TrainedPolicy:
    method: str
    beta: float | None
    seed: int
    state: dict[str, torch.Tensor]
    train_seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str = ""

    @property
    def label(self) -> str:
        return label_of(self.method, self.beta)


def train_policies(
    inputs: PosttrainInputs,
    settings: PosttrainSettings,
    advantages: EventAdvantages | None = None,
    reward_model: CatalogueRewardModel | None = None,
    log: Log = print,
) -> list[TrainedPolicy]:
    """Fine-tune the pretrained policy for every (method, beta, seed). Reads no oracle. Where
    the advantages cover a sample of the training windows (AdvantagesSettings.max_windows),
    every method draws its batches from that sample."""
    data = inputs.data if advantages is None else with_scored_windows(inputs.data, advantages)
    out = []
    for method, beta in settings.configurations():
        for seed in settings.seeds:
            t0 = time.perf_counter()
            model = finetune(
                inputs.policy,
                data,
                settings.run_config(method, beta, seed, inputs.temperature),
                advantages=advantages if REGISTRY[method].needs_advantages else None,
                reward_model=reward_model,
                log=log,
                device=settings.device,
            )
            seconds = time.perf_counter() - t0
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            out.append(TrainedPolicy(method, beta, seed, state, seconds))
            log(f"trained {label_of(method, beta)} seed {seed} in {seconds:.1f}s")
    return out


def policy_model(inputs: PosttrainInputs, state: dict[str, torch.Tensor]) -> SequenceEncoder:
    """The pretrained policy's architecture with a trained policy's weights, in eval mode."""
    model = SequenceEncoder(inputs.data.n_items, inputs.policy.cfg)
    model.load_state_dict(state)
    return model.eval()


def evaluate_policies(
    policies: list[TrainedPolicy],
    evaluate: Evaluator,
    inputs: PosttrainInputs,
    settings: PosttrainSettings,
    *,
    dataset: str,
    tags: dict[str, str],
    root: Path,
    log: Log = print,
) -> list[str]:
    """Evaluate every policy (its `metrics`) and log it as an MLflow run (its `run_id`, returned
    in order): the run's config as params, its metrics and training time as metrics."""
    run_ids = []
    for p in policies:
        p.metrics = evaluate(policy_model(inputs, p.state))
        name = f"{dataset}-{p.label}-seed{p.seed}"
        with start_run(EXPERIMENT, name, tags={**tags, "method": p.method}, root=root) as run:
            config = settings.run_config(p.method, p.beta, p.seed, inputs.temperature)
            mlflow.log_params(dataclasses.asdict(config))
            mlflow.log_metrics(finite_metrics(p.metrics | {"train_seconds": p.train_seconds}))
        p.run_id = run.info.run_id
        run_ids.append(p.run_id)
        log(f"{name}: {p.metrics}")
    return run_ids


def summarise(
    policies: list[TrainedPolicy], pretrained: dict[str, float]
) -> dict[str, dict[str, Any]]:
    """Per configuration: method, beta, runs and {metric: {mean, ci95}} over seeds."""
    groups: dict[str, list[TrainedPolicy]] = {}
    for p in policies:
        groups.setdefault(p.label, []).append(p)
    summary: dict[str, dict[str, Any]] = {
        PRETRAINED: {"method": PRETRAINED, "beta": None, "runs": 1}
        | {m: {"mean": v, "ci95": 0.0} for m, v in pretrained.items()}
    }
    for label, runs in groups.items():
        row: dict[str, Any] = {"method": runs[0].method, "beta": runs[0].beta, "runs": len(runs)}
        for m in METRICS:
            if m in runs[0].metrics:
                mean, ci = mean_ci([r.metrics[m] for r in runs])
                row[m] = {"mean": mean, "ci95": ci}
        row["train_seconds"] = float(np.mean([r.train_seconds for r in runs]))
        summary[label] = row
    return summary
