"""The reward stage: train the trainer's reward ensemble and the judge ensemble on disjoint users,
evaluate both on the future-dated test events against user-mean / title-mean / global-mean
baselines (and, on the simulator, against the hidden true satisfaction), track it in MLflow and
return the report (`reports/reward.json`) beside `reward/test_predictions.parquet`.

Disjoint data: users are split in two halves by a stable hash of their id; the trainer's ensemble
learns from half A's training events, the judge's from half B's. Trade-off: each ensemble sees half
the events (so both are weaker than one trained on everything), but the judge shares no training
event (and no user) with the model post-training optimises against, so a policy that exploits the
trainer's errors is not rewarded for it by the judge. Both share the frozen pretrained encoder
(trained on all users' training events) and read the same point-in-time features.

Knows nothing of Dagster: the `reward_model` asset calls `run_reward_stage`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import torch

from common.layout import DataLayout
from common.tables import finite_metrics
from training.core.device import resolve_device
from training.models.checkpoint import load_policy_on_temporal_split
from training.reward.evaluate import (
    PREDICTOR,
    baseline_predictions,
    calibration_plot,
    evaluate_ensembles,
    oracle_truth,
    predictions_table,
    results_markdown,
)
from training.reward.features import day_stamps, fetch_feature_tables
from training.reward.model import RewardEnsemble, save_reward_ensemble
from training.reward.settings import RewardSettings
from training.reward.train import (
    JUDGE_HALF,
    TRAINER_HALF,
    dense_user_halves,
    predict,
    split_targets,
    train_ensemble,
    train_targets,
)

EXPERIMENT = "reward"
PROTOCOL = (
    "future-dated test split (events at or after the temporal test cut-off, each predicted from "
    "the user's history before it); features point-in-time as of the last daily stamp at or "
    "before the event; baselines: user's and title's mean reward at that time (global train "
    "mean where none); AUC of reward >= 4 vs not; judge trained on the other half of the users"
)

Log = Callable[[str], None]


@dataclass
class RewardStageResult:
    report: dict[str, Any]
    model_dir: Path
    judge_dir: Path
    run_id: str
    calibration_png: Path
    predictions_path: Path
    table_markdown: str


def run_reward_stage(
    settings: RewardSettings,
    root: Path,
    log: Log = print,
    tags: dict[str, str] | None = None,
    dataset: str = "simulator",
) -> RewardStageResult:
    """Train the trainer and judge ensembles, evaluate, save, track; see the module docstring."""
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.num_threads)
    try:
        return _run(settings, root, log, tags, dataset)
    finally:
        torch.set_num_threads(threads)  # the process (e.g. Dagster in-process) runs other stages


def _run(
    settings: RewardSettings,
    root: Path,
    log: Log,
    tags: dict[str, str] | None,
    dataset: str,
) -> RewardStageResult:
    t_start = time.perf_counter()
    layout = DataLayout(root)
    encoder, vocab, _, data = load_policy_on_temporal_split(root)
    encoder.to(resolve_device(settings.device, "RewardSettings.device"))  # the heads follow it

    # Load: point-in-time features and the frozen encoder's states of every target.
    ts = data.events.timestamps
    t0 = time.perf_counter()
    tables, feature_check = fetch_feature_tables(
        vocab,
        day_stamps(float(ts.min()), float(ts.max())),
        root,
        settings.feast_check_rows,
        settings.seed,
    )
    feature_seconds = time.perf_counter() - t0
    log(f"features: {len(tables.stamps)} days in {feature_seconds:.1f}s")

    t0 = time.perf_counter()
    train_all = train_targets(encoder, data, settings.max_train_events, settings.seed)
    valid_all = split_targets(
        encoder, data, data.valid, settings.eval_context, settings.max_valid_events, settings.seed
    )
    test = split_targets(
        encoder, data, data.test, settings.eval_context, settings.max_test_events, settings.seed
    )
    encode_seconds = time.perf_counter() - t0
    log(
        f"encoded {len(train_all):,} train / {len(valid_all):,} valid / {len(test):,} test "
        f"targets in {encode_seconds:.1f}s"
    )
    if len(test) == 0:
        raise ValueError("the temporal test split has no rewarded event to evaluate on")

    # Train: the trainer's ensemble on one half of the users, the judge's on the other.
    half_of = dense_user_halves(vocab)
    models: dict[str, RewardEnsemble] = {}
    fits: dict[str, dict[str, Any]] = {}
    for name, h, members, seed in (
        ("trainer", TRAINER_HALF, settings.members, settings.seed),
        ("judge", JUDGE_HALF, settings.judge_members, settings.seed + 1),
    ):
        models[name], fits[name] = train_ensemble(
            name,
            encoder,
            data.vocab,
            tables,
            train_all.take(half_of[train_all.users] == h),
            valid_all.take(half_of[valid_all.users] == h),
            settings.head_config(members, seed),
            settings.train_config(seed),
            log,
        )

    # Evaluate: every rewarded test event; the oracle is read here and nowhere in training.
    base = baseline_predictions(
        tables.user_feature("user_reward_mean", test.users, test.ts),
        tables.item_feature("item_reward_mean", test.items, test.ts),
        fits["trainer"]["global_train_mean"],
    )
    truth = oracle_truth(root, dataset, data, test)
    preds = {name: predict(m, test) for name, m in models.items()}
    results, calibration = evaluate_ensembles(preds, base, test, truth)

    # Save: both ensembles, the test predictions, the calibration.
    model_dir, judge_dir = layout.reward_model, layout.reward_judge
    common_meta = {"dataset": dataset, "features_days": len(tables.stamps), "protocol": PROTOCOL}
    save_reward_ensemble(models["trainer"], model_dir, {**common_meta, "users_half": TRAINER_HALF})
    save_reward_ensemble(models["judge"], judge_dir, {**common_meta, "users_half": JUDGE_HALF})
    predictions_path = layout.reward_test_predictions
    predictions_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(predictions_table(data, test, preds, base, truth), predictions_path)
    plot = calibration_plot(calibration, layout.plot("reward-calibration"))
    (layout.reward_outputs / "calibration.json").write_text(
        json.dumps(calibration, indent=2) + "\n"
    )

    # Report and track.
    table_md = results_markdown(
        results,
        f"**{dataset}**, {len(test):,} future-dated test events (reward_judge: trained on the "
        "other half of the users)",
    )
    report = {
        "dataset": dataset,
        "protocol": PROTOCOL,
        "test_events": len(test),
        "test": {dataset: results},
        "training": {
            PREDICTOR[name]: {
                k: fit[k] for k in ("train_events", "train_users", "seconds", "epochs_run")
            }
            for name, fit in fits.items()
        },
        "seconds": {
            "features": round(feature_seconds, 1),
            "encode": round(encode_seconds, 1),
            "total": round(time.perf_counter() - t_start, 1),
        },
        "feature_store_check": {
            view: f"{c['cells']} cells agree" for view, c in feature_check.items()
        },
    }
    details = {"settings": asdict(settings), "calibration": calibration, "fits": fits}
    run_id = _track(report, details, settings, [plot, predictions_path], tags, root)
    report["mlflow_run_id"] = run_id
    (model_dir / "mlflow_run.json").write_text(json.dumps({"run_id": run_id}))
    return RewardStageResult(report, model_dir, judge_dir, run_id, plot, predictions_path, table_md)


def _track(
    report: dict[str, Any],
    details: dict[str, Any],
    settings: RewardSettings,
    files: list[Path],
    tags: dict[str, str] | None,
    root: Path,
) -> str:
    # common.tracking turns MLflow's telemetry off before importing it, so it comes first.
    from common.tracking import start_run  # isort: skip

    import mlflow

    layout = DataLayout(root)
    dataset = report["dataset"]
    with start_run(
        EXPERIMENT, f"reward-{dataset}", {"dataset": dataset, **(tags or {})}, root
    ) as run:
        mlflow.log_params({f"settings.{k}": v for k, v in asdict(settings).items()})
        mlflow.log_params({"test_events": report["test_events"]})
        for name, fit in details["fits"].items():
            for row in fit["history"]:
                mlflow.log_metrics(
                    {f"{name}_train_mse": row["loss"], f"{name}_valid_rmse": row["valid_rmse"]},
                    step=row["epoch"],
                )
        for predictor, metrics in report["test"][dataset].items():
            mlflow.log_metrics({f"{predictor}.{k}": v for k, v in finite_metrics(metrics).items()})
        mlflow.log_metrics({f"seconds_{k}": v for k, v in report["seconds"].items()})
        for path in files:
            mlflow.log_artifact(str(path))
        mlflow.log_artifacts(str(layout.reward_model), artifact_path="reward_model")
        mlflow.log_artifacts(str(layout.reward_judge), artifact_path="reward_judge")
        mlflow.log_dict(report, "reward_report.json")
        mlflow.log_dict(details, "reward_details.json")  # settings, calibration, epoch history
        return run.info.run_id
