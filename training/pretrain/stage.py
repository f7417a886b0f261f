"""The pretraining stage: train the policy (and comparison models) on the warehouse sequences,
evaluate with the design's protocol, track every run in MLflow and return the report
(`reports/pretrain.json`); the policy is copied to `models/pretrained_policy`.

Knows nothing of Dagster: the `pretrained_policy` asset calls `run_pretraining`.
"""

from __future__ import annotations

# common.tracking turns MLflow's telemetry off before importing it, so it comes first.
from common.tracking import start_run  # isort: skip

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
import pyarrow as pa

from common.layout import DataLayout
from common.tables import markdown_table as table_markdown
from common.tables import mean_ci_cell, mlflow_metric_name
from training.core.config import ModelConfig, TrainConfig
from training.core.data import SequenceData, build_dataset
from training.core.metrics import RANKING_METRICS
from training.core.stats import mean_ci
from training.models.pyfunc import log_policy
from training.pretrain.checkpoint import BEST, VOCAB, run_key
from training.pretrain.ddp import launch_pretrain
from training.pretrain.loop import PretrainResult, pretrain
from training.pretrain.report import training_curve
from training.pretrain.settings import PretrainSettings

EXPERIMENT = "pretrain"
PROTOCOL = (
    "full-catalogue ranking; items already seen by the user are excluded from the ranking "
    "(never the target itself); leave_one_out: test = each user's last event, valid = the one "
    "before; temporal: targets after the dbt split cut-offs, history = everything before"
)


@dataclass
class PretrainStageResult:
    report: dict[str, Any]
    policy_dir: Path
    policy_run_id: str
    curve_png: Path


def run_pretraining(
    sequences: pa.Table,
    valid_start: datetime,
    test_start: datetime,
    settings: PretrainSettings,
    root: Path,
    dataset: str,
    log: Callable[[str], None] = print,
    tags: dict[str, str] | None = None,
) -> PretrainStageResult:
    """Train kinds x splits x seeds, evaluate, log to MLflow; keep the policy under root/models."""
    layout = DataLayout(root)
    table: dict[str, dict[str, Any]] = {}
    timing: dict[str, list[float]] = {}
    policy: tuple[Path, str, Path] | None = None
    for split in settings.splits:
        data = build_dataset(
            sequences,
            max_len=settings.model_config(settings.kinds[0]).max_len,
            split=split,
            valid_start=valid_start,
            test_start=test_start,
        )
        fingerprint = _data_fingerprint(data)
        per_method: dict[str, list[dict[str, float]]] = {}
        for kind in settings.kinds:
            for seed in settings.seeds:
                name = f"{kind}-{settings.size}-{split}-seed{seed}"
                mcfg, tcfg = settings.model_config(kind), settings.train_config(seed)
                # Named by data and settings: a re-run resumes its own run; changed settings
                # (say, a new lr from the launchpad) start a fresh one beside it.
                checkpoints = layout.pretrain_checkpoints / (
                    f"{name}-{fingerprint}-{run_key(mcfg, tcfg)}"
                )
                run_tags = {"dataset": dataset, "split": split, "kind": kind, **(tags or {})}
                with start_run(EXPERIMENT, name, tags=run_tags, root=root) as run:
                    result = _train_one(
                        data, mcfg, tcfg, checkpoints, settings.ddp_processes, log, settings.device
                    )
                    curve = training_curve(result.history, name, layout.plot(f"pretrain-{name}"))
                    _log_run(result, data, curve, settings.ddp_processes)
                per_method.setdefault(kind, []).append(result.metrics["test"])
                timing.setdefault(kind, []).append(result.train_seconds)
                if kind == settings.kinds[0] and split == settings.policy_split and policy is None:
                    policy = (checkpoints, run.info.run_id, curve)
            per_method["popularity"] = [result.metrics["popularity_test"]]
        table[split] = {
            method: {
                m: dict(zip(("mean", "ci95"), mean_ci([r[m] for r in runs]), strict=True))
                for m in RANKING_METRICS
            }
            | {"runs": len(runs)}
            for method, runs in per_method.items()
        }
        table[split]["data"] = data.summary()
    assert policy is not None
    checkpoints, run_id, curve = policy
    policy_dir = _keep_policy(checkpoints, run_id, layout.pretrained_policy)
    report = {
        "dataset": dataset,
        "protocol": PROTOCOL,
        "seen_items_excluded": True,
        "policy": {"kind": settings.kinds[0], "split": settings.policy_split, "run_id": run_id},
        "test": {dataset: table},
        "train_seconds": {k: round(sum(v) / len(v), 1) for k, v in timing.items()},
        "seeds": list(settings.seeds),
        "ddp_processes": settings.ddp_processes,
    }
    return PretrainStageResult(report, policy_dir, run_id, curve)


def markdown_table(report: dict[str, Any]) -> str:
    """Test metrics per split and method as mean ± 95% CI."""
    return "\n".join(
        table_markdown(
            ["method", *RANKING_METRICS, "runs"],
            [
                [method, *(mean_ci_cell(metrics[m]) for m in RANKING_METRICS), metrics["runs"]]
                for method, metrics in methods.items()
                if method != "data"
            ],
            f"**{dataset}, {split}** (seen items excluded)",
        )
        for dataset, splits in report["test"].items()
        for split, methods in splits.items()
    )


def _data_fingerprint(data: SequenceData) -> str:
    blob = json.dumps(data.summary(), sort_keys=True) + "|" + "|".join(data.vocab.items.ids[:50])
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _train_one(
    data: SequenceData,
    model_config: ModelConfig,
    train_config: TrainConfig,
    checkpoints: Path,
    ddp_processes: int,
    log: Callable[[str], None],
    device: str = "cpu",
) -> PretrainResult:
    """One run, in this process or under torchrun; per-epoch metrics go to the active MLflow run."""

    def epoch_metrics(epoch: int, row: dict[str, Any]) -> None:
        numeric = {k: float(v) for k, v in row.items() if isinstance(v, int | float)}
        mlflow.log_metrics({mlflow_metric_name(k): v for k, v in numeric.items()}, step=epoch)

    if ddp_processes > 1:
        return launch_pretrain(
            data, model_config, train_config, checkpoints, ddp_processes, log, epoch_metrics,
            device=device,
        )  # fmt: skip
    return pretrain(
        data, model_config, train_config, checkpoints, log, epoch_metrics, device=device
    )


def _log_run(result: PretrainResult, data: SequenceData, curve: Path, ddp_processes: int) -> None:
    mlflow.log_params({f"model.{k}": v for k, v in result.model_config.to_dict().items()})
    mlflow.log_params({f"train.{k}": v for k, v in result.train_config.to_dict().items()})
    mlflow.log_param("train.ddp_processes", ddp_processes)
    mlflow.log_params({f"data.{k}": v for k, v in data.summary().items()})
    for name, metrics in result.metrics.items():
        mlflow.log_metrics({mlflow_metric_name(f"{name}_{k}"): v for k, v in metrics.items()})
    mlflow.log_metrics({"best_epoch": result.best_epoch, "train_seconds": result.train_seconds})
    mlflow.log_artifact(str(curve))
    # The serving model (signature, vocabulary, code): what serves where no champion is.
    log_policy(result.model, data, name="model")


def _keep_policy(checkpoints: Path, run_id: str, policy_dir: Path) -> Path:
    """The policy handed to post-training: its best weights, vocab and MLflow run id."""
    shutil.rmtree(policy_dir, ignore_errors=True)
    policy_dir.mkdir(parents=True)
    shutil.copy2(checkpoints / BEST, policy_dir / BEST)
    shutil.copy2(checkpoints / VOCAB, policy_dir / VOCAB)
    (policy_dir / "mlflow_run.json").write_text(json.dumps({"run_id": run_id}))
    return policy_dir
