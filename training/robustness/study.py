"""The robustness study, end to end: every level trained and scored without the oracle
(condition.py), then the ground truth added to every policy at once (the oracle is loaded only
after the last policy of the last level is trained), the tables, the plot, MLflow and
`reports/robustness.json`. Knows nothing of Dagster (orchestration/defs/robustness/)."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from common.layout import DataLayout
from common.reports import write_report
from common.tables import finite_metrics, log_artifacts, mlflow_metric_name
from common.tracking import start_run
from training.posttrain import evaluate as ev
from training.reward.evaluate import pearson, spearman
from training.robustness import report
from training.robustness.condition import ConditionResult, run_condition
from training.robustness.settings import RobustnessSettings
from training.robustness.world import StudyWorld, load_world
from watchlogs.oracle import Oracle

Log = Callable[[str], None]
EXPERIMENT = "robustness"


def train_conditions(
    world: StudyWorld, s: RobustnessSettings, log: Log = print
) -> list[ConditionResult]:
    """Every (kind, level) of the settings, trained and scored without the ground truth."""
    return [run_condition(world, kind, level, s, log) for kind, level in s.conditions()]


def add_truth(
    results: list[ConditionResult], world: StudyWorld, oracle: Oracle, s: RobustnessSettings
) -> None:
    """Evaluation only, after everything is trained: every policy's normalised true
    satisfaction (`true_satisfaction`) and the trainer's reward model's correlation with the
    true satisfaction of the test events (`reward_truth`)."""
    data, post = world.data, s.posttrain()
    states = ev.user_states(data, "test", post.eval_users, seed=0)
    scale = ev.satisfaction_scale(oracle, data, states, post.k)
    test = world.policy_events.test
    vocab = data.vocab
    truth = oracle.satisfaction(vocab.users.decode(test.users), vocab.items.decode(test.items))
    for c in results:
        for run in c.runs:
            run.metrics["true_satisfaction"] = ev.true_satisfaction(run.slates, scale, data,
                                                                    states)  # fmt: skip
        c.reward_fit["reward_truth_spearman"] = spearman(c.reward_test_prediction, truth)
        c.reward_fit["reward_truth_pearson"] = pearson(c.reward_test_prediction, truth)


def runs_frame(results: list[ConditionResult], kinds: tuple[str, ...]) -> pd.DataFrame:
    """One row per (kind, level, policy): the clean level is repeated under every kind."""
    rows = []
    for c in results:
        for kind in kinds if c.kind == "clean" else (c.kind,):
            for r in c.runs:
                rows.append({"kind": kind, "level": c.level, "method": r.method,
                             "beta": np.nan if r.beta is None else r.beta, "seed": r.seed,
                             **r.metrics, **c.reward_fit})  # fmt: skip
    return pd.DataFrame(rows)


@dataclass
class RobustnessResult:
    report: dict[str, Any]
    table_md: str
    files: dict[str, Path]  # table_md, table_csv, runs_csv, validity_csv, plot
    study_run_id: str
    seconds: dict[str, float]


def run_robustness_study(
    s: RobustnessSettings,
    root: Path,
    dataset: str,
    *,
    log: Log = print,
    tags: dict[str, str] | None = None,
) -> RobustnessResult:
    """Load the world, train every level, add the ground truth, report and track."""
    threads = torch.get_num_threads()
    torch.set_num_threads(s.num_threads)
    try:
        return _run(s, root, dataset, log, tags or {})
    finally:
        torch.set_num_threads(threads)  # the process (Dagster in-process) runs other stages


def _run(s: RobustnessSettings, root: Path, dataset: str, log: Log, tags: dict[str, str]):
    t_start = time.perf_counter()
    world = load_world(root, s, log)
    t0 = time.perf_counter()
    results = train_conditions(world, s, log)
    train_seconds = time.perf_counter() - t0
    oracle = ev.load_oracle(root)  # evaluation only: every level's every policy is trained
    if oracle is not None:
        add_truth(results, world, oracle, s)

    frame = runs_frame(results, tuple(s.kinds))
    out_dir = DataLayout(root).stage_reports("robustness")
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = report.build_tables(frame, s.select_by, s.max_kl)
    table_md = report.markdown(tables, dataset, s)
    files = report.write_outputs(frame, tables, table_md, out_dir)
    files["plot"] = report.plot(tables, out_dir / "robustness.png")
    seconds = {
        **{k: round(v, 1) for k, v in world.seconds.items()},
        "train_and_score": round(train_seconds, 1),
        "total": round(time.perf_counter() - t_start, 1),
    }
    figures = {
        "dataset": dataset,
        "simulator_ground_truth": oracle is not None,
        "conditions": [f"{c.kind}@{c.level:g}" for c in results],
        "selection_rule": report.rule_text(s.select_by, s.max_kl),
        "selected": report.records(tables["selected"]),
        "judge_validity": report.records(tables["validity"]),
        "crossovers": tables["crossovers"],
        "habit_share": float(world.habit.mean()),
        "seconds": seconds,
    }
    run_tags = {"dataset": dataset, "study": uuid.uuid4().hex[:12], **tags}
    with start_run(EXPERIMENT, f"{dataset}-robustness", tags=run_tags, root=root) as run:
        import mlflow

        params = {k: str(v)[:250] for k, v in dataclasses.asdict(s).items()}
        mlflow.log_params(params | {"habit_share": f"{world.habit.mean():.4f}"})
        for row in figures["selected"]:
            key = mlflow_metric_name(f"{row['kind']}.{row['level']:g}.{row['method']}")
            mlflow.log_metrics(finite_metrics({f"{key}.{m}": row.get(m, np.nan)
                                               for m in report.HEADLINE}))  # fmt: skip
        log_artifacts(files.values())
        study_run_id = run.info.run_id
    figures["mlflow_study_run_id"] = study_run_id
    write_report("robustness", figures, root=root)
    return RobustnessResult(figures, table_md, files, study_run_id, seconds)
