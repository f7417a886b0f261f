"""The post-training stage: advantages, then the study (every method x beta x seed fine-tuned from
the pretrained policy, study.py), its evaluation (evaluator.py, evaluate.py), the results table
and the beta-sweep plot (report.py), MLflow tracking, `reports/posttrain.json`, and the champion
(champion.py, where its rule is written).

Knows nothing of Dagster: the assets in orchestration/defs/posttrain/assets.py call these functions.

Every policy is trained before anything is evaluated, and the simulator's oracle is loaded only
in the evaluation step, so no training code can ever see it.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pyarrow.parquet as pq
import torch

from common.layout import DataLayout
from common.reports import write_report
from common.tables import log_artifacts, mlflow_metric_name
from common.tracking import start_run
from training.posttrain import report
from training.posttrain.advantages import EventAdvantages, advantages_table, compute_advantages
from training.posttrain.champion import choose_champion, publish_champion
from training.posttrain.evaluator import METRICS, build_evaluator
from training.posttrain.inputs import load_advantages, load_ensemble, load_posttrain_inputs
from training.posttrain.methods import REGISTRY
from training.posttrain.settings import AdvantagesSettings, PosttrainSettings
from training.posttrain.study import EXPERIMENT, evaluate_policies, summarise, train_policies
from training.reward.contract import CatalogueRewardModel

Log = Callable[[str], None]


# ---- advantages --------------------------------------------------------------------------------
@dataclass
class AdvantagesResult:
    path: Path
    stats: dict[str, float]
    state_sum_max_abs: float  # max |sum_a pi(a|s) A(s, a)| over states: ~0 by construction
    histogram: Path
    seconds: float


def run_advantages(
    root: Path,
    settings: AdvantagesSettings = AdvantagesSettings(),  # noqa: B008 (frozen, immutable)
    *,
    reward_model: CatalogueRewardModel | None = None,
    log: Log = print,
) -> AdvantagesResult:
    """A for every training target of the temporal split, written to DataLayout(root).advantages."""
    t0 = time.perf_counter()
    layout = DataLayout(root)
    inputs = load_posttrain_inputs(root)
    model = reward_model if reward_model is not None else load_ensemble(layout.reward_model)
    adv = compute_advantages(
        inputs.policy, model, inputs.data, settings, temperature=inputs.temperature, log=log
    )
    path = layout.advantages
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(advantages_table(adv, inputs.data), tmp)
    tmp.replace(path)
    swa = adv.state_weighted_advantage[np.isfinite(adv.state_weighted_advantage)]
    return AdvantagesResult(
        path=path,
        stats=report.advantage_stats(adv.advantage),
        state_sum_max_abs=float(np.abs(swa).max()) if len(swa) else float("nan"),
        histogram=report.advantage_histogram(
            adv.advantage, "advantages", layout.plot("advantages")
        ),
        seconds=time.perf_counter() - t0,
    )


# ---- the study --------------------------------------------------------------------------------
@dataclass
class PosttrainStudyResult:
    report: dict[str, Any]
    summary: dict[str, dict[str, Any]]
    table_md: str
    table_md_path: Path
    table_csv: Path
    plot: Path
    study_run_id: str
    policy_run_ids: list[str]
    champion: dict[str, Any]
    seconds: dict[str, float]


def run_posttrain_study(
    settings: PosttrainSettings,
    root: Path,
    dataset: str,
    *,
    log: Log = print,
    tags: dict[str, str] | None = None,
    advantages: EventAdvantages | None = None,
    reward_model: CatalogueRewardModel | None = None,
    judge: CatalogueRewardModel | None = None,
) -> PosttrainStudyResult:
    """Train, evaluate, aggregate, track, report and pick the champion (module docstring).

    `advantages`, `reward_model` and `judge` default to what the earlier assets saved under
    `root` (DataLayout: advantages, reward_model, reward_judge)."""
    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    t_start = time.perf_counter()
    layout = DataLayout(root)
    inputs = load_posttrain_inputs(root)
    methods = [REGISTRY[m] for m in settings.methods]
    if advantages is None and any(m.needs_advantages for m in methods):
        advantages = load_advantages(layout.advantages, inputs.data)
    if reward_model is None and any(m.needs_reward_model for m in methods):
        reward_model = load_ensemble(layout.reward_model)
    load_seconds = time.perf_counter() - t_start

    # 1. Train everything. The oracle is not loaded before this returns.
    t0 = time.perf_counter()
    policies = train_policies(inputs, settings, advantages, reward_model, log)
    train_seconds = time.perf_counter() - t0

    # 2. Evaluate the pretrained policy and every post-trained one on the same states.
    t0 = time.perf_counter()
    judge = judge if judge is not None else load_ensemble(layout.reward_judge)
    evaluate = build_evaluator(inputs, judge, root, settings)
    pretrained = evaluate(inputs.policy)
    run_tags = {"dataset": dataset, "study": uuid.uuid4().hex[:12], **(tags or {})}
    run_ids = evaluate_policies(policies, evaluate, inputs, settings, dataset=dataset,
                                tags=run_tags, root=root, log=log)  # fmt: skip
    eval_seconds = time.perf_counter() - t0

    # 3. Aggregate, write the table and the plot.
    summary = summarise(policies, pretrained)
    out_dir = layout.stage_reports("posttrain")
    table_md = report.results_markdown(summary, dataset)
    md_path = out_dir / "posttrain_results.md"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(table_md)
    csv_path = report.write_csv(summary, dataset, out_dir / "posttrain_results.csv")
    plot = report.beta_sweep_plot(summary, dataset, out_dir / "beta_sweep.png")

    # 4. The champion, registered only where the rule holds; the study run holds the artifacts.
    decision = choose_champion(summary, ndcg_margin=settings.ndcg_margin, max_kl=settings.max_kl)
    with start_run(EXPERIMENT, f"{dataset}-study", tags={**run_tags, "kind": "study"}, root=root):
        mlflow.log_params(
            {k: str(v) for k, v in dataclasses.asdict(settings).items()}
            | {"ranking_targets": len(evaluate.ranking_split), "states": len(evaluate.states)}
        )
        for label, row in summary.items():
            mlflow.log_metrics(
                {mlflow_metric_name(f"{label}.{m}"): row[m]["mean"] for m in METRICS if m in row}
            )
        log_artifacts((md_path, csv_path, plot))
        decision = publish_champion(decision, policies, inputs, dataset=dataset, root=root,
                                    model_name=settings.registered_model_name)  # fmt: skip
        mlflow.set_tag("champion", decision.get("model_version", "none"))
        mlflow.set_tag("champion_reason", decision["reason"][:250])
        study_run_id = mlflow.active_run().info.run_id
    log(f"champion: {decision}")

    seconds = {
        "load": round(load_seconds, 1),
        "train": round(train_seconds, 1),
        "evaluate": round(eval_seconds, 1),
        "total": round(time.perf_counter() - t_start, 1),
    }
    figures = {
        "dataset": dataset,
        "protocol": report.PROTOCOL,
        "seen_items_excluded": True,
        "simulator_ground_truth": evaluate.scale is not None,
        "test": {dataset: report.figures_by_policy(summary)},
        "evaluated": {
            "ranking_targets": len(evaluate.ranking_split),
            "slate_states": len(evaluate.states),
        },
        "champion": {k: v for k, v in decision.items() if k != "checks"},
        "champion_checks": decision["checks"],
        "seeds": list(settings.seeds),
        "betas": {
            m: list(settings.betas_of(m)) for m in settings.methods if REGISTRY[m].uses_beta
        },  # fmt: skip
        "steps": settings.steps,
        "seconds": seconds,
        "mlflow_study_run_id": study_run_id,
    }
    write_report("posttrain", figures, root=root)
    return PosttrainStudyResult(
        figures, summary, table_md, md_path, csv_path, plot, study_run_id, run_ids, decision,
        seconds,
    )  # fmt: skip
