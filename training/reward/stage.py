"""The reward stage: train the trainer's reward ensemble and the judge ensemble on disjoint users,
evaluate both on the future-dated test events against user-mean / title-mean / global-mean
baselines (and, on the simulator, against the hidden true satisfaction), track it in MLflow and
write `reports/reward.json` and `reward/test_predictions.parquet`.

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

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from common.paths import oracle_dir
from training.core.data import SequenceData, Vocab
from training.models.checkpoint import load_policy_on_temporal_split
from training.reward.contract import reward_judge_dir, reward_model_dir
from training.reward.evaluate import (
    baseline_predictions,
    calibration_plot,
    calibration_table,
    compare_predictors,
    markdown_table,
)
from training.reward.model import (
    FeatureTables,
    HeadConfig,
    RewardEnsemble,
    day_stamps,
    dense_from_rows,
    save_reward_ensemble,
)
from training.reward.train import (
    RewardTrainConfig,
    Targets,
    fit_ensemble,
    predict,
    split_targets,
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
PREDICTOR = {"trainer": "reward_model", "judge": "reward_judge"}  # names in the results table


@dataclass(frozen=True)
class RewardSettings:
    members: int = 5
    judge_members: int = 5
    embed_dim: int = 32
    hidden: int = 64
    epochs: int = 6
    patience: int = 2
    batch_size: int = 1024
    lr: float = 3e-3
    weight_decay: float = 1e-4
    bootstrap: bool = True
    max_train_events: int | None = 300_000  # over both halves; the frozen encoder reads them once
    max_valid_events: int | None = 40_000
    max_test_events: int | None = None  # None: every rewarded test event
    eval_context: int | None = None  # earlier events every test target sees (None: max_len // 2)
    feast_check_rows: int = 1000  # random (entity, day) cells per table re-read through Feast
    # Torch threads for the stage. The heads' matmuls are tiny: on a shared 2-core box 1 thread
    # was 7x faster than 2 (OpenMP threads wait on each other).
    num_threads: int = 1
    seed: int = 0

    def head_config(self, members: int, seed: int) -> HeadConfig:
        return HeadConfig(members, self.embed_dim, self.hidden, seed)

    def train_config(self, seed: int) -> RewardTrainConfig:
        return RewardTrainConfig(
            epochs=self.epochs,
            patience=self.patience,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            bootstrap=self.bootstrap,
            seed=seed,
        )


@dataclass
class RewardStageResult:
    report: dict[str, Any]
    model_dir: Path
    judge_dir: Path
    run_id: str
    calibration_png: Path
    predictions_path: Path
    table_markdown: str


def user_half(user_ids: list[str]) -> np.ndarray:
    """0 or 1 per user id, from a hash that is stable across runs, machines and row orders."""
    values = np.asarray(user_ids, dtype=object)
    return (pd.util.hash_array(values, categorize=False) % 2).astype(np.int8)


def fetch_feature_tables(
    vocab: Vocab, stamps: np.ndarray, root: Path, check_rows: int = 1000, seed: int = 0
) -> tuple[FeatureTables, dict[str, Any]]:
    """Point-in-time features of every (user, day) and (title, day), from the Feast store.

    Feast's file offline store answered 100k point-in-time rows in 63 s on the shared 2-core box,
    so asking it for every (entity, day) of the default data (~1.15M rows) would take ~12 minutes
    (the stage's budget is ~3 for everything). The dense
    tables are therefore built from the feature views' registered offline sources with the same
    rule ("latest row stamped <= t", no TTL) in numpy, then `check_rows` random (entity, day)
    cells of each table are asked of Feast's `get_historical_features` (features.retrieval) and
    must agree exactly, or the stage stops.
    """
    import pyarrow.parquet as pq

    from features.export import ITEM_STATS, USER_STATS
    from features.retrieval import (
        ITEM_FEATURES,
        USER_FEATURES,
        historical_item_features,
        historical_user_features,
    )
    from features.store import feature_store

    store = feature_store(root)
    rng = np.random.default_rng(seed)
    when = pd.to_datetime(stamps, unit="s", utc=True)
    info: dict[str, Any] = {}

    def table(view: str, key: str, idmap, names: list[str], fetch: Callable) -> np.ndarray:
        path = store.get_feature_view(view).batch_source.path
        rows = pq.read_table(path, columns=[key, "event_timestamp", *names])
        ts = rows.column("event_timestamp").cast(pa.timestamp("us", tz="UTC"))
        dense = dense_from_rows(
            idmap.encode(rows.column(key)),
            ts.cast(pa.int64()).to_numpy() / 1e6,
            np.column_stack([rows.column(n).to_numpy(zero_copy_only=False) for n in names])
            .astype(np.float32),
            stamps,
            len(idmap),
        )  # fmt: skip
        if check_rows:
            t0 = time.perf_counter()
            ent = rng.integers(1, len(idmap) + 1, check_rows)
            day = rng.integers(0, len(stamps), check_rows)
            asked = pd.DataFrame({key: idmap.decode(ent), "event_timestamp": when[day]})
            got = fetch(asked, root=root)[names].to_numpy(dtype=np.float32, na_value=np.nan)
            mine = dense[day + 1, ent]
            same = np.isclose(got, mine, rtol=1e-5, atol=1e-6, equal_nan=True)
            if not same.all():
                raise ValueError(
                    f"{view}: {int((~same.all(1)).sum())} of {check_rows} point-in-time cells "
                    "differ from Feast's get_historical_features"
                )
            info[f"{view}_feast_check"] = {
                "cells": check_rows,
                "agree": True,
                "seconds": round(time.perf_counter() - t0, 1),
            }
        return dense

    tables = FeatureTables(
        stamps,
        table(USER_STATS.view, "user_id", vocab.users, USER_FEATURES, historical_user_features),
        table(ITEM_STATS.view, "item_id", vocab.items, ITEM_FEATURES, historical_item_features),
        list(USER_FEATURES),
        list(ITEM_FEATURES),
    )
    return tables, info


def _oracle_truth(root: Path, dataset: str, data: SequenceData, t: Targets) -> np.ndarray | None:
    """True satisfaction of the test (user, title) pairs; simulator only, evaluation only."""
    from watchlogs.oracle import ARRAYS_FILE, Oracle

    folder = oracle_dir(root)
    if dataset != "simulator" or not (folder / ARRAYS_FILE).exists():
        return None

    oracle = Oracle.load(folder)
    users = data.vocab.users.decode(t.users)
    items = data.vocab.items.decode(t.items)
    return oracle.satisfaction(users, items)


def _ensemble(
    name: str,
    encoder,
    data: SequenceData,
    tables: FeatureTables,
    train: Targets,
    valid: Targets,
    members: int,
    seed: int,
    settings: RewardSettings,
    log: Log,
) -> tuple[RewardEnsemble, dict[str, Any]]:
    global_mean = float(train.rewards.mean())
    model = RewardEnsemble(
        encoder, data.vocab, tables, settings.head_config(members, seed), global_mean
    )
    t0 = time.perf_counter()
    log(f"{name}: {members} members on {len(train):,} events ({len(valid):,} for validation)")
    fit = fit_ensemble(model, train, valid, settings.train_config(seed), log=log)
    fit.update(
        seconds=round(time.perf_counter() - t0, 1),
        train_events=len(train),
        train_users=int(len(np.unique(train.users))),
        global_train_mean=global_mean,
    )
    return model, fit


def _evaluate(
    preds: dict[str, np.ndarray], base: dict[str, np.ndarray], t: Targets, truth: np.ndarray | None
) -> tuple[dict[str, dict[str, float]], dict[str, list[dict[str, float]]]]:
    """One table: the trainer's ensemble (`reward_model`), the judge's (`reward_judge`), the
    baselines; and the calibration of each."""
    means = {PREDICTOR[name]: p.mean(0) for name, p in preds.items()}
    table = compare_predictors({**means, **base}, t.rewards, truth)
    for name, p in preds.items():
        table[PREDICTOR[name]]["mean_member_std"] = float(p.std(0).mean())
    calibration = {
        name: calibration_table(pred, t.rewards)
        for name, pred in {**means, **base}.items()
        if name != "global_mean"
    }
    return table, calibration


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
    encoder, vocab, _, data = load_policy_on_temporal_split(root)
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

    half = user_half(vocab.users.ids)
    half_of = np.concatenate([[-1], half])  # dense user id -> half (0 = unknown user)
    models: dict[str, RewardEnsemble] = {}
    fits: dict[str, dict[str, Any]] = {}
    for name, h, members, seed in (
        ("trainer", 0, settings.members, settings.seed),
        ("judge", 1, settings.judge_members, settings.seed + 1),
    ):
        models[name], fits[name] = _ensemble(
            name,
            encoder,
            data,
            tables,
            train_all.take(half_of[train_all.users] == h),
            valid_all.take(half_of[valid_all.users] == h),
            members,
            seed,
            settings,
            log,
        )

    # Evaluation: every rewarded test event; the oracle is read here and nowhere in training.
    global_mean = fits["trainer"]["global_train_mean"]
    base = baseline_predictions(
        tables.user_feature("user_reward_mean", test.users, test.ts),
        tables.item_feature("item_reward_mean", test.items, test.ts),
        global_mean,
    )
    truth = _oracle_truth(root, dataset, data, test)
    preds = {name: predict(m, test) for name, m in models.items()}
    results, calibration = _evaluate(preds, base, test, truth)

    model_dir, judge_dir = reward_model_dir(root), reward_judge_dir(root)
    common_meta = {"dataset": dataset, "features_days": len(tables.stamps), "protocol": PROTOCOL}
    save_reward_ensemble(models["trainer"], model_dir, {**common_meta, "users_half": 0})
    save_reward_ensemble(models["judge"], judge_dir, {**common_meta, "users_half": 1})

    predictions_path = root / "reward" / "test_predictions.parquet"
    predictions_path.parent.mkdir(parents=True, exist_ok=True)
    columns = {}
    if data.events.event_ids is not None:  # joins the predictions back to the raw events
        columns["event_id"] = pa.array(data.events.event_ids[test.event_index], pa.string())
    columns |= {
        "user_id": pa.array(vocab.users.decode(test.users), pa.string()),
        "item_id": pa.array(vocab.items.decode(test.items), pa.string()),
        "event_ts": pa.array((test.ts * 1e6).astype(np.int64), pa.timestamp("us", tz="UTC")),
        "reward": test.rewards.astype(np.float64),
        "r_hat_mean": preds["trainer"].mean(0).astype(np.float64),
        "r_hat_std": preds["trainer"].std(0).astype(np.float64),
        "judge_mean": preds["judge"].mean(0).astype(np.float64),
        "judge_std": preds["judge"].std(0).astype(np.float64),
        "user_mean": base["user_mean"],
        "item_mean": base["title_mean"],
    }
    if truth is not None:
        columns["true_satisfaction"] = truth.astype(np.float64)
    pq.write_table(pa.table(columns), predictions_path)

    plot = calibration_plot(calibration, root / "plots" / "reward-calibration.png")
    (root / "reward" / "calibration.json").write_text(json.dumps(calibration, indent=2) + "\n")
    table_md = (
        f"**{dataset}**, {len(test):,} future-dated test events (reward_judge: trained on the "
        f"other half of the users)\n\n{markdown_table(results)}"
    )
    total_seconds = round(time.perf_counter() - t_start, 1)
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
            "total": total_seconds,
        },
        "feature_store_check": {
            view: f"{c['cells']} cells agree" for view, c in feature_check.items()
        },
    }
    details = {"settings": asdict(settings), "calibration": calibration, "fits": fits}
    run_id = _track(
        report, details, settings, plot, model_dir, judge_dir, predictions_path, tags, root
    )
    report["mlflow_run_id"] = run_id
    (model_dir / "mlflow_run.json").write_text(json.dumps({"run_id": run_id}))
    return RewardStageResult(report, model_dir, judge_dir, run_id, plot, predictions_path, table_md)


def _track(
    report: dict[str, Any],
    details: dict[str, Any],
    settings: RewardSettings,
    plot: Path,
    model_dir: Path,
    judge_dir: Path,
    predictions_path: Path,
    tags: dict[str, str] | None,
    root: Path,
) -> str:
    # common.tracking turns MLflow's telemetry off before importing it, so it comes first.
    from common.tracking import start_run  # isort: skip

    import mlflow

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
            mlflow.log_metrics(
                {f"{predictor}.{k}": v for k, v in metrics.items() if np.isfinite(v)}
            )
        mlflow.log_metrics({f"seconds_{k}": v for k, v in report["seconds"].items()})
        mlflow.log_artifact(str(plot))
        mlflow.log_artifact(str(predictions_path))
        mlflow.log_artifacts(str(model_dir), artifact_path="reward_model")
        mlflow.log_artifacts(str(judge_dir), artifact_path="reward_judge")
        mlflow.log_dict(report, "reward_report.json")
        mlflow.log_dict(details, "reward_details.json")  # settings, calibration, epoch history
        return run.info.run_id


def load_test_predictions(root: Path) -> pd.DataFrame:
    return pq.read_table(root / "reward" / "test_predictions.parquet").to_pandas()
