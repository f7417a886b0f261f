"""The pretraining stage: train the policy (and comparison models) on the warehouse sequences,
evaluate with the design's protocol, track every run in MLflow and write `reports/pretrain.json`.

Knows nothing of Dagster: the `pretrained_policy` asset calls `run_pretraining`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: plots go to MLflow and Dagster metadata as files
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import pyarrow as pa  # noqa: E402

from common.paths import pretrained_policy_dir
from common.plots import save_figure
from common.tracking import start_run  # noqa: E402
from training.core.config import ModelConfig, TrainConfig  # noqa: E402
from training.core.data import SequenceData, build_dataset  # noqa: E402
from training.core.stats import mean_ci
from training.pretrain.compare import METRICS  # noqa: E402
from training.pretrain.ddp import launch_pretrain  # noqa: E402
from training.pretrain.loop import PretrainResult, pretrain, run_key  # noqa: E402

EXPERIMENT = "pretrain"
PROTOCOL = (
    "full-catalogue ranking; items already seen by the user are excluded from the ranking "
    "(never the target itself); leave_one_out: test = each user's last event, valid = the one "
    "before; temporal: targets after the dbt split cut-offs, history = everything before"
)


@dataclass(frozen=True)
class PretrainSettings:
    """What to train. The first kind, trained on `policy_split` with the first seed, is the policy
    handed to post-training; the other kinds, splits and seeds are for the comparison table."""

    kinds: tuple[str, ...] = ("hstu",)
    size: str = "small"  # small | hstu_large
    splits: tuple[str, ...] = ("temporal", "leave_one_out")
    policy_split: str = "temporal"  # post-training evaluates on the future-dated split
    seeds: tuple[int, ...] = (0,)
    # The default run trains briefly so it ends in minutes; configs/ raise these.
    epochs: int | None = 3  # None: the TrainConfig default (early stopping decides)
    patience: int | None = 2
    max_len: int | None = 50
    # TrainConfig overrides (None = the TrainConfig default): dataset-specific tuning lives in
    # configs/*.yaml, so the default simulator run keeps the default cost per step.
    # 512 sampled negatives keep the default run in minutes on the simulator's 3.5k titles (the
    # full softmax, -1, costs ~4x per epoch there); configs/ml-100k.yaml sets -1.
    num_negatives: int | None = 512
    temperature: float | None = None
    lr: float | None = None
    ema_decay: float | None = None
    logits_matmul: str | None = None  # "float32" | "bfloat16" (TrainConfig.logits_matmul)
    seen_scope: str | None = None  # "window" | "history" (TrainConfig.seen_scope)
    dropout: float | None = None  # None = the ModelConfig default
    query_time: str | None = None  # HSTU's time-gap query, "own" | "decision" (None = default)
    # > 1: every training run goes under `torchrun --standalone --nproc_per_node N` (DDP, gloo,
    # CPU), the global batch split across the processes; 1 = one process, in this one.
    ddp_processes: int = 1

    def __post_init__(self) -> None:
        if self.ddp_processes < 1:
            raise ValueError(f"ddp_processes must be >= 1, got {self.ddp_processes}")

    def model_config(self, kind: str) -> ModelConfig:
        base = ModelConfig.hstu_large() if self.size == "hstu_large" else ModelConfig()
        if self.size not in ("small", "hstu_large"):
            raise ValueError(f"unknown model size {self.size!r}: expected small or hstu_large")
        cfg = replace(base, kind=kind)
        if self.dropout is not None:
            cfg = replace(cfg, dropout=self.dropout)
        if self.query_time is not None:
            cfg = replace(cfg, query_time=self.query_time)
        return replace(cfg, max_len=self.max_len) if self.max_len else cfg

    def train_config(self, seed: int) -> TrainConfig:
        overrides: dict[str, Any] = {"seed": seed}
        if self.epochs is not None:
            overrides["epochs"] = self.epochs
        if self.patience is not None:
            overrides["patience"] = self.patience
        tuned = ("num_negatives", "temperature", "lr", "ema_decay", "logits_matmul", "seen_scope")
        for name in tuned:
            if getattr(self, name) is not None:
                overrides[name] = getattr(self, name)
        return replace(TrainConfig(), **overrides)


@dataclass
class PretrainStageResult:
    report: dict[str, Any]
    policy_dir: Path
    policy_run_id: str
    curve_png: Path


def _data_fingerprint(data: SequenceData) -> str:
    blob = json.dumps(data.summary(), sort_keys=True) + "|" + "|".join(data.vocab.items.ids[:50])
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _numeric(row: dict[str, Any]) -> dict[str, float]:
    return {k.replace("@", "_at_"): float(v) for k, v in row.items() if isinstance(v, int | float)}


def _curve(history: list[dict[str, Any]], title: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = [r["epoch"] for r in history]
    ax.plot(epochs, [r["loss"] for r in history], color="tab:blue", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("train loss", color="tab:blue")
    if any("valid_ndcg@10" in r for r in history):
        ax2 = ax.twinx()
        pts = [(r["epoch"], r["valid_ndcg@10"]) for r in history if "valid_ndcg@10" in r]
        ax2.plot(*zip(*pts, strict=True), color="tab:orange", label="valid NDCG@10")
        ax2.set_ylabel("valid NDCG@10", color="tab:orange")
    ax.set_title(title)
    return save_figure(fig, path)


def _log_run(result: PretrainResult, data: SequenceData, curve: Path, ddp_processes: int) -> None:
    mlflow.log_params({f"model.{k}": v for k, v in result.model_config.to_dict().items()})
    mlflow.log_params({f"train.{k}": v for k, v in result.train_config.to_dict().items()})
    mlflow.log_param("train.ddp_processes", ddp_processes)
    mlflow.log_params({f"data.{k}": v for k, v in data.summary().items()})
    for name, metrics in result.metrics.items():
        mlflow.log_metrics({f"{name}_{k}".replace("@", "_at_"): v for k, v in metrics.items()})
    mlflow.log_metrics({"best_epoch": result.best_epoch, "train_seconds": result.train_seconds})
    mlflow.log_artifact(str(curve))
    mlflow.pytorch.log_model(
        result.model,
        name="model",
        serialization_format="pickle",
        code_paths=[str(Path(__file__).resolve().parent)],  # the model classes travel with it
        pip_requirements=["torch==2.13.0", "numpy"],
    )


def _train_one(
    data: SequenceData,
    model_config: ModelConfig,
    train_config: TrainConfig,
    checkpoints: Path,
    ddp_processes: int,
    log: Callable[[str], None],
) -> PretrainResult:
    """One run, in this process or under torchrun; per-epoch metrics go to the active MLflow run."""

    def epoch_metrics(epoch: int, row: dict[str, Any]) -> None:
        mlflow.log_metrics(_numeric(row), step=epoch)

    if ddp_processes > 1:
        return launch_pretrain(
            data, model_config, train_config, checkpoints, ddp_processes, log, epoch_metrics
        )
    return pretrain(data, model_config, train_config, checkpoints, log, epoch_metrics)


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
    if settings.policy_split not in settings.splits:
        raise ValueError(f"policy_split {settings.policy_split!r} is not among {settings.splits}")
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
                run_dir = f"{name}-{fingerprint}-{run_key(mcfg, tcfg)}"
                checkpoints = root / "checkpoints" / "pretrain" / run_dir
                run_tags = {"dataset": dataset, "split": split, "kind": kind, **(tags or {})}
                with start_run(EXPERIMENT, name, tags=run_tags, root=root) as run:
                    result = _train_one(
                        data,
                        mcfg,
                        tcfg,
                        checkpoints,
                        settings.ddp_processes,
                        log,
                    )
                    curve = _curve(result.history, name, root / "plots" / f"pretrain-{name}.png")
                    _log_run(result, data, curve, settings.ddp_processes)
                per_method.setdefault(kind, []).append(result.metrics["test"])
                timing.setdefault(kind, []).append(result.train_seconds)
                if kind == settings.kinds[0] and split == settings.policy_split and policy is None:
                    policy = (checkpoints, run.info.run_id, curve)
            per_method["popularity"] = [result.metrics["popularity_test"]]
        table[split] = {
            method: {
                m: dict(zip(("mean", "ci95"), mean_ci([r[m] for r in runs]), strict=True))
                for m in METRICS
            }
            | {"runs": len(runs)}
            for method, runs in per_method.items()
        }
        table[split]["data"] = data.summary()
    assert policy is not None
    checkpoints, run_id, curve = policy
    policy_dir = pretrained_policy_dir(root)
    shutil.rmtree(policy_dir, ignore_errors=True)
    policy_dir.mkdir(parents=True)
    shutil.copy2(checkpoints / "best.pt", policy_dir / "best.pt")
    shutil.copy2(checkpoints / "vocab.json", policy_dir / "vocab.json")
    (policy_dir / "mlflow_run.json").write_text(json.dumps({"run_id": run_id}))
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
    lines = []
    for dataset, splits in report["test"].items():
        for split, methods in splits.items():
            lines += [f"**{dataset}, {split}** (seen items excluded)", ""]
            lines += ["| method | " + " | ".join(METRICS) + " | runs |"]
            lines += ["| --- " * (len(METRICS) + 2) + "|"]
            for method, metrics in methods.items():
                if method == "data":
                    continue
                cells = [f"{metrics[m]['mean']:.4f} ± {metrics[m]['ci95']:.4f}" for m in METRICS]
                lines.append(f"| {method} | " + " | ".join(cells) + f" | {metrics['runs']} |")
            lines.append("")
    return "\n".join(lines)
