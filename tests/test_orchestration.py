"""Dagster definitions load, and the main job materializes every asset on tiny data (real dbt,
DuckDB and Dagster; no mocks), launched as `make run` launches it: `python -m orchestration.launch`
in a subprocess, its console quiet (one progress line per asset, no DEBUG or dbt test lines)
while its log file and the instance keep the whole event log."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import dagster as dg
import duckdb
import mlflow
import pytest
import yaml

from common.layout import DataLayout
from common.paths import data_dir, warehouse_path
from common.tracking import tracking_uri
from orchestration.definitions import defs
from orchestration.resources import dbt_project

ROOT = Path(__file__).resolve().parent.parent
TARGET = dbt_project.project_dir / "target"  # dbt's target directories, one per invocation
TINY = {"n_users": 40, "n_items": 120, "n_events": 1500, "n_days": 21}


def run_config(**overrides) -> dict:
    return {
        "ops": {
            "raw_watch_logs": {"config": {**TINY, **overrides}},
            # Both splits: the report's comparison table (the default trains the policy's only).
            "pretrained_policy": {
                "config": {"epochs": 2, "patience": 1, "splits": ["temporal", "leave_one_out"]}
            },
            "reward_model": {
                "config": {"members": 2, "judge_members": 2, "epochs": 2, "feast_check_rows": 200}
            },
            "posttrained_policies": {
                "config": {
                    "methods": ["bc", "asft"],
                    "betas": [1.0],
                    "seeds": [0, 1],
                    "steps": 3,
                    "batch_size": 8,
                    "eval_users": 20,
                    "max_ranking_targets": 200,
                }
            },
        }
    }


def test_definitions_load_with_every_stage_and_dbt_tests_as_checks():
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    for expected in (
        "raw_watch_logs",
        "staging/stg_watch_events",
        "staging/quarantine_watch_events",
        "intermediate/int_events_sessionized",
        "marts/fct_watch_sessions",
        "marts/fct_reward_events",
        "marts/user_sequences",
        "marts/split_temporal_events",
        "marts/split_leave_one_out_events",
        "marts/user_reward_stats_daily",
        "marts/item_reward_stats_daily",
        "marts/user_recent_history",
        "feature_tables",
        "feature_registry",
        "online_features",
        "data_report",
        "pretrained_policy",
        "reward_model",
        "advantages",
        "posttrained_policies",
        "batch_recommendations",
    ):
        assert expected in keys
    # dbt's source is wired to the raw asset, so lineage runs raw -> staging.
    parents = repo.asset_graph.get(
        dg.AssetKey(["staging", "stg_watch_events__checked"])
    ).parent_keys
    assert dg.AssetKey("raw_watch_logs") in parents
    assert len(list(repo.asset_graph.asset_check_keys)) >= 50
    assert defs.resolve_job_def("main_job") is not None


@dataclass
class LaunchedRun:
    """The launcher's exit and console, and what its run left in the instance."""

    done: subprocess.CompletedProcess
    run_id: str
    success: bool
    materialized: list[str]  # asset keys, in materialization order
    metadata: dict[str, dict[str, Any]]  # asset key -> its materialization's metadata
    checks: list[dg.AssetCheckEvaluation] = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)  # event type -> count


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> LaunchedRun:
    """`python -m orchestration.launch --job main_job --summary` on tiny data, in this session's
    data directory and its own Dagster instance."""
    tmp = tmp_path_factory.mktemp("launched-run")
    config = tmp / "tiny.yaml"
    config.write_text(yaml.safe_dump(run_config(seed=1)))
    home = tmp / "dagster_home"
    env = {**os.environ, "ASFT_DATA_DIR": str(data_dir()), "DAGSTER_HOME": str(home),
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    command = [sys.executable, "-m", "orchestration.launch", "--job", "main_job",
               "--config", str(config), "--summary"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    with (
        mock.patch.dict(os.environ, {"DAGSTER_HOME": str(home)}),  # dagster.yaml reads it
        dg.DagsterInstance.from_config(str(home)) as instance,
    ):
        (run,) = instance.get_runs()
        events = [r.dagster_event for r in instance.all_logs(run.run_id) if r.dagster_event]
    materializations = [
        e.event_specific_data.materialization
        for e in events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    ]
    return LaunchedRun(
        done=done,
        run_id=run.run_id,
        success=run.status == dg.DagsterRunStatus.SUCCESS,
        materialized=[m.asset_key.to_user_string() for m in materializations],
        metadata={m.asset_key.to_user_string(): m.metadata for m in materializations},
        checks=[
            e.event_specific_data for e in events if e.event_type_value == "ASSET_CHECK_EVALUATION"
        ],
        kinds=Counter(e.event_type_value for e in events),
    )


def test_the_console_has_one_line_per_asset_and_nothing_else(first_run):
    console = first_run.done.stdout + first_run.done.stderr
    assert first_run.done.returncode == 0, console[-3000:]
    lines = console.splitlines()
    assert len(first_run.materialized) >= 20
    for key in first_run.materialized:
        mine = [line for line in lines if re.search(rf"\basset\s+{re.escape(key)}\s", line)]
        assert len(mine) == 1, (key, mine)
        assert re.search(r"\d+\.\ds", mine[0]), mine[0]  # its seconds
    assert "DEBUG" not in console
    assert "STEP_START" not in console and "ASSET_MATERIALIZATION" not in console
    assert not re.search(r"\d+ of \d+ (START|PASS|OK)", console)  # dbt's per-test lines
    assert "Warning" not in console
    assert any(line.startswith("data ") for line in lines)  # the summary's stage blocks
    assert len(lines) <= 150
    assert lines[-3].startswith("main_job succeeded")


def test_the_log_file_holds_the_full_event_log(first_run):
    log = Path(first_run.done.stdout.splitlines()[-2].removeprefix("full event log: "))
    assert log.is_file() and log.parent.name == "logs"
    text = log.read_text()
    assert " - DEBUG - " in text and "RUN_START" in text and "RUN_SUCCESS" in text
    # each step's events, as many as the instance stored for the UI
    for kind in ("STEP_START", "STEP_SUCCESS", "ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION"):
        assert text.count(f" - {kind} - ") == first_run.kinds[kind] > 0, kind
    assert re.search(r"\d+ of \d+ PASS", text)  # dbt's per-test lines are here


def test_main_job_materializes_sequences_splits_and_report(first_run):
    assert first_run.success
    assert first_run.checks and all(c.passed for c in first_run.checks)

    with duckdb.connect(str(warehouse_path()), read_only=True) as con:
        users, min_len = con.execute(
            "select count(*), min(sequence_length) from marts.user_sequences"
        ).fetchone()
        splits = dict(
            con.execute(
                "select split, count(*) from marts.split_temporal_events group by 1"
            ).fetchall()
        )
    assert users == TINY["n_users"] and min_len >= 2
    assert set(splits) == {"train", "valid", "test"}

    report = json.loads((data_dir() / "reports" / "data.json").read_text())
    assert report["events"] == TINY["n_events"]
    assert report["users"] == TINY["n_users"]
    assert report["sessions"] > TINY["n_users"]
    assert report["quarantined_rows"] == 0

    materialized = first_run.metadata
    assert materialized["raw_watch_logs"]["dagster/row_count"].value == TINY["n_events"]
    assert materialized["marts/user_sequences"]["dagster/row_count"].value == TINY["n_users"]
    assert "date_range" in materialized["staging/stg_watch_events"]


def test_a_jobs_later_dbt_steps_start_from_the_parse_of_its_first(first_run):
    run = first_run.run_id[:7]
    logs = {
        step: TARGET.glob(f"{step}-{run}-*/dbt.log")
        for step in ("warehouse_models", "warehouse_daily_models", "warehouse_models_2")
    }
    logs = {step: next(found).read_text() for step, found in logs.items()}
    # The first parses whole when `make prepare` parsed for another data directory (the DuckDB
    # path is part of dbt's profile); the later ones start from its parse.
    for step in ("warehouse_daily_models", "warehouse_models_2"):
        assert "Unable to do partial parsing" not in logs[step], step


def test_pretrained_policy_is_tracked_in_mlflow_and_reported(first_run):
    assert first_run.success
    report = json.loads((data_dir() / "reports" / "pretrain.json").read_text())
    assert report["seen_items_excluded"] is True
    table = report["test"]["simulator"]
    for split in ("temporal", "leave_one_out"):
        assert {"hstu", "popularity"} <= set(table[split])
        assert 0.0 <= table[split]["hstu"]["ndcg@10"]["mean"] <= 1.0

    mlflow.set_tracking_uri(tracking_uri())
    run = mlflow.get_run(report["policy"]["run_id"])
    assert run.data.params["model.kind"] == "hstu"
    assert (
        "test_ndcg_at_10" in run.data.metrics and "popularity_test_ndcg_at_10" in run.data.metrics
    )
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [1, 2]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert any(p.endswith(".png") for p in artifacts)
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert "item_ids" in model.metadata.get_input_schema().input_names()
    assert (data_dir() / "models" / "pretrained_policy" / "best.pt").exists()


def test_reward_model_is_reported_tracked_and_scores_online(first_run):
    """The reward stage end to end on the tiny run: report table, MLflow run, saved ensembles,
    test predictions, and online scoring through the Feast online store."""
    import pyarrow.parquet as pq

    from training.reward.model import load_reward_ensemble
    from training.reward.online import OnlineScorer

    assert first_run.success
    report = json.loads((data_dir() / "reports" / "reward.json").read_text())
    table = report["test"]["simulator"]
    assert {"reward_model", "reward_judge", "user_mean", "title_mean", "global_mean"} <= set(table)
    assert report["test_events"] > 0 and table["reward_model"]["rmse"] > 0
    assert "spearman_true_satisfaction" in table["title_mean"]  # the simulator's oracle
    mlflow.set_tracking_uri(tracking_uri())
    run = mlflow.get_run(report["mlflow_run_id"])
    assert "reward_model.rmse" in run.data.metrics
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"reward-calibration.png", "reward_model", "reward_judge"} <= artifacts
    predictions = pq.read_table(data_dir() / "reward" / "test_predictions.parquet")
    assert predictions.num_rows == report["test_events"]
    trainer = load_reward_ensemble(DataLayout(data_dir()).reward_model)
    assert (
        trainer.n_members == 2
        and load_reward_ensemble(DataLayout(data_dir()).reward_judge).n_members == 2
    )
    scorer = OnlineScorer.from_root(data_dir())
    user, items = trainer.vocab.users.ids[0], trainer.vocab.items.ids[:3]
    scores = scorer.score(user, [*items, "no-such-title"])
    assert scores["r_hat_mean"].iloc[:3].between(1, 5).all()
    assert (scores["r_hat_std"].iloc[:3] > 0).all() and scores["r_hat_mean"].isna().iloc[3]


def test_posttrain_study_reports_and_serves_batch_recommendations(first_run):
    """Advantages, the study's table, plot and report, and the batch recommendations table."""
    assert first_run.success
    report = json.loads((data_dir() / "reports" / "posttrain.json").read_text())
    table = report["test"]["simulator"]
    assert {"pretrained", "bc", "asft@beta=1"} <= set(table)
    assert {"ndcg@10", "judge_reward", "true_satisfaction", "kl"} <= set(table["asft@beta=1"])
    assert table["bc"]["runs"] == 2
    materialized = first_run.metadata
    assert materialized["advantages"]["dagster/row_count"].value > 0
    study = materialized["posttrained_policies"]
    assert "| asft@beta=1 |" in study["results"].value
    assert study["champion_registered"].value == report["champion"]["registered"]
    with duckdb.connect(str(warehouse_path()), read_only=True) as con:
        rows = con.execute("select count(*) from serving.batch_recommendations").fetchone()[0]
    assert rows == materialized["batch_recommendations"]["dagster/row_count"].value > 0


def test_a_new_dataset_rebuilds_the_warehouse_instead_of_appending(first_run):
    """Incremental models grow by day; a different raw dataset must not leave the old one behind."""
    assert first_run.success
    # Raw and the warehouse (with their checks): nothing downstream reads into this assertion.
    warehouse = dg.AssetSelection.assets("raw_watch_logs") | dg.AssetSelection.key_prefixes(
        ["staging"], ["intermediate"], ["marts"]
    )
    raw_only = {
        "ops": {"raw_watch_logs": run_config(seed=2, n_events=1200)["ops"]["raw_watch_logs"]}
    }
    with dg.DagsterInstance.ephemeral() as instance:
        second = defs.resolve_job_def("main_job").execute_in_process(
            run_config=raw_only,
            instance=instance,
            asset_selection=list(warehouse.resolve(defs.get_repository_def().asset_graph)),
        )
    assert second.success
    with duckdb.connect(str(warehouse_path()), read_only=True) as con:
        rewards = con.execute("select count(*) from marts.fct_reward_events").fetchone()[0]
    assert rewards == 1200
    # A later run on the same data directory starts from the parse its last dbt step kept.
    assert DataLayout(data_dir()).dbt_parse.is_file()
    log = next(TARGET.glob(f"warehouse_models-{second.run_id[:7]}-*/dbt.log")).read_text()
    assert "Unable to do partial parsing" not in log
