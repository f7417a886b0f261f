"""Dagster definitions load, and the main job materializes the data assets in-process on tiny data
(real dbt, DuckDB and Dagster; no mocks)."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import mlflow
import pytest

from common.paths import data_dir, warehouse_path
from common.tracking import tracking_uri
from orchestration.definitions import defs

TINY = {"n_users": 40, "n_items": 120, "n_events": 1500, "n_days": 21}


def run_config(**overrides) -> dict:
    return {
        "ops": {
            "raw_watch_logs": {"config": {**TINY, **overrides}},
            "pretrained_policy": {"config": {"epochs": 2, "patience": 1}},
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
    ):
        assert expected in keys
    # dbt's source is wired to the raw asset, so lineage runs raw -> staging.
    parents = repo.asset_graph.get(
        dg.AssetKey(["staging", "stg_watch_events__checked"])
    ).parent_keys
    assert dg.AssetKey("raw_watch_logs") in parents
    assert len(list(repo.asset_graph.asset_check_keys)) >= 50
    assert defs.get_job_def("main_job") is not None


@pytest.fixture(scope="module")
def first_run():
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.get_job_def("main_job").execute_in_process(
            run_config=run_config(seed=1), instance=instance
        )
        yield result


def test_main_job_materializes_sequences_splits_and_report(first_run):
    assert first_run.success
    checks = first_run.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)

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

    materialized = {
        m.asset_key.to_user_string(): m.metadata
        for m in first_run.get_asset_materialization_events()
        for m in [m.event_specific_data.materialization]
    }
    assert materialized["raw_watch_logs"]["dagster/row_count"].value == TINY["n_events"]
    assert materialized["marts/user_sequences"]["dagster/row_count"].value == TINY["n_users"]
    assert "date_range" in materialized["staging/stg_watch_events"]


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
    model = mlflow.pytorch.load_model(f"runs:/{run.info.run_id}/model")
    assert sum(p.numel() for p in model.parameters()) > 0
    assert (data_dir() / "models" / "pretrained_policy" / "best.pt").exists()


def test_a_new_dataset_rebuilds_the_warehouse_instead_of_appending(first_run):
    """Incremental models grow by day; a different raw dataset must not leave the old one behind."""
    assert first_run.success
    with dg.DagsterInstance.ephemeral() as instance:
        second = defs.get_job_def("main_job").execute_in_process(
            run_config=run_config(seed=2, n_events=1200), instance=instance
        )
    assert second.success
    with duckdb.connect(str(warehouse_path()), read_only=True) as con:
        rewards = con.execute("select count(*) from marts.fct_reward_events").fetchone()[0]
    assert rewards == 1200
