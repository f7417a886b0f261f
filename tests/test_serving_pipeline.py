"""Serving end to end on a tiny real run (Dagster, dbt, Feast, MLflow; no mocks): batch
recommendations follow the registry alias and name the version; `mlflow models serve` of the
alias on loopback answers a real history as the policy does in process; the recommend command
reads Feast, prints ten titles with r_hat, exits 2 for an unknown user and falls back to
popularity for a user without history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from common.layout import DataLayout
from common.tracking import start_run
from features.export import USER_STATS
from features.online import online_user_features, sample_user
from features.store import feature_store
from orchestration.definitions import defs
from tests.tiny_world import REAPPLY, copy_world, world_keys
from training.models.checkpoint import load_policy_on_temporal_split
from training.models.recommender import Recommender, Request, popularity_of
from training.posttrain.champion import register_champion
from training.serving.online import OnlineRecommender
from training.serving.server import model_server

NAME = "asft-recommender"
SKIPPED = {"advantages", "posttrained_policies"}  # the study: not what serving needs
AT = 1_737_000_000.0  # the request time every path below is asked at
ROOT = Path(__file__).resolve().parent.parent
ENV = os.environ | {"PYTHONPATH": str(ROOT), "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


def materialize(instance: dg.DagsterInstance, keys: set[str]) -> dg.ExecuteInProcessResult:
    config = {
        "reward_model": {
            "config": {"members": 2, "judge_members": 2, "epochs": 2, "feast_check_rows": 200}
        },
    }
    return defs.resolve_job_def("main_job").execute_in_process(
        run_config={"ops": {op: c for op, c in config.items() if op in keys}},
        instance=instance,
        asset_selection=[dg.AssetKey.from_user_string(k) for k in sorted(keys)],
    )


def batch_metadata(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = [
        e.event_specific_data.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("batch_recommendations")
    ]
    return {k: v.value for k, v in event.metadata.items()}


@pytest.fixture(scope="module")
def run(tiny_world, tmp_path_factory):
    """The tiny run without the study (the tiny world's copy, then the rest), batch
    recommendations from the pretrained policy; then a champion registered (the pretrained
    weights stand in for a post-trained policy: the tiny study's rule registers none) and batch
    recommendations again."""
    root = copy_world(tiny_world, tmp_path_factory.mktemp("serving") / "data")
    with pytest.MonkeyPatch.context() as mp, dg.DagsterInstance.ephemeral() as instance:
        mp.setenv("ASFT_DATA_DIR", str(root))
        keys = {
            k.to_user_string() for k in defs.get_repository_def().asset_graph.get_all_asset_keys()
        }
        rest = keys - SKIPPED - {"batch_recommendations"} - world_keys() | REAPPLY
        # Batch recommendations depend on the study only, so they run alone once the rest is in.
        assert materialize(instance, rest).success
        first = materialize(instance, {"batch_recommendations"})
        assert first.success
        policy, _, _, data = load_policy_on_temporal_split(root)
        with start_run("posttrain", "stand-in-champion", root=root):
            _, version = register_champion(policy, data, NAME, {"method": "stand-in"})
        second = materialize(instance, {"batch_recommendations"})
        assert second.success
        popularity = popularity_of(data.events.items, data.n_items)
        yield {
            "root": root,
            "version": version,
            "before": batch_metadata(first),
            "after": batch_metadata(second),
            "policy": Recommender(policy, data.vocab.items, popularity),
        }


def test_batch_recommendations_follow_the_alias_and_name_the_version(run):
    before, after = run["before"], run["after"]
    assert before["model_name"] == "pretrained_policy" and before["model_version"].startswith(
        "run:"
    )
    assert before["model_uri"].startswith("runs:/")
    assert (after["model_name"], after["model_version"]) == (NAME, run["version"])
    assert after["model_uri"] == f"models:/{NAME}/{run['version']}"
    assert after["alias"] == "champion" and after["dagster/row_count"] > 0
    rows = pd.read_parquet(DataLayout(run["root"]).batch_recommendations)
    assert set(rows["model_version"]) == {run["version"]} and rows["rank"].max() == 10


def post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def served(run):
    """`mlflow models serve` of the alias on a free loopback port, in the local environment;
    stopped by its own process id (model_server's docstring)."""
    with model_server(run["root"], f"models:/{NAME}@champion") as url:
        yield url


def test_the_served_alias_answers_a_real_history_as_the_policy_in_process(run, served):
    torch.set_num_threads(1)
    root = run["root"]
    user, _ = sample_user(root)
    history = online_user_features(feature_store(root), user)["history"]
    items, times = history["recent_item_ids"], [float(t) for t in history["recent_event_ts"]]
    record = {"item_ids": items, "timestamps": times, "request_ts": AT}
    answer = post(served, {"dataframe_records": [record], "params": {"k": 10}})["predictions"][0]
    (expected,) = run["policy"].recommend([Request(items, times, AT)], k=10)
    in_process = OnlineRecommender(root, NAME).recommend(user, 10, AT)
    assert answer["item_ids"] == expected.item_ids == in_process.titles["item_id"].tolist()
    assert answer["scores"] == pytest.approx(expected.scores, abs=1e-5)
    assert answer["source"] == "policy" and len(answer["item_ids"]) == 10
    assert not set(answer["item_ids"]) & set(items)
    # A malformed request is refused with a 400 naming the column.
    bad = {"dataframe_records": [{"item_ids": items, "request_ts": AT}]}
    with pytest.raises(urllib.error.HTTPError) as refused:
        post(served, bad)
    assert (
        refused.value.code == 400
        and "missing inputs ['timestamps']" in refused.value.read().decode()
    )


def recommend(root: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "training.serving.cli", "recommend", "--data-dir", str(root)]
    return subprocess.run([*cmd, *args], env=ENV, capture_output=True, text=True, timeout=600)


def recommend_in_process(root: Path, *args: str) -> subprocess.CompletedProcess:
    """The same command run by typer's test runner in this process: its exit code and output,
    without a fresh interpreter importing Feast, torch and MLflow again (`recommend` above
    runs the real command once)."""
    from training.serving.cli import app  # here: importing it sets MLflow's environment

    got = CliRunner().invoke(app, ["recommend", "--data-dir", str(root), *args])
    stderr = got.stderr + (repr(got.exception) if got.exception else "")
    return subprocess.CompletedProcess(args, got.exit_code, got.stdout, stderr)


def test_the_recommend_command_prints_ten_titles_with_r_hat(run):
    root = run["root"]
    user, _ = sample_user(root)
    got = recommend(root, "--user", user, "--k", "10", "--at", str(AT))
    assert got.returncode == 0, got.stderr
    (expected,) = run["policy"].recommend([Request(*_history(root, user), AT)], k=10)
    lines = got.stdout.splitlines()
    assert f"from {NAME} version {run['version']} (champion)" in lines[0]
    assert "recent titles from the Feast online store" in lines[1]
    rows = [line.split() for line in lines if line.split() and line.split()[0].isdigit()]
    assert [r[1] for r in rows] == expected.item_ids and [r[0] for r in rows] == [
        str(i) for i in range(1, 11)
    ]
    assert all(1.0 <= float(r[3]) <= 5.0 and float(r[4]) >= 0.0 for r in rows)  # r_hat mean, spread


def _history(root: Path, user: str) -> tuple[list[str], list[float]]:
    history = online_user_features(feature_store(root), user)["history"]
    return history["recent_item_ids"], [float(t) for t in history["recent_event_ts"]]


def test_an_unknown_user_exits_2_and_a_user_without_history_gets_popularity(run):
    root = run["root"]
    got = recommend_in_process(root, "--user", "no-such-user")
    assert got.returncode == 2 and "unknown user" in got.stdout and "no-such-user" in got.stdout
    # A new user with statistics but no history yet (written to the online store as a feature
    # pipeline would), so the store knows the user and the policy has nothing to go on.
    stats = {c: [0.0] for c in USER_STATS.columns} | {
        "user_id": ["new-user"],
        "event_timestamp": [pd.Timestamp("2025-01-20", tz="UTC")],
    }
    stats |= {c: [0] for c in USER_STATS.columns if "_n_" in c or c.startswith("user_n")}
    feature_store(root).write_to_online_store(USER_STATS.view, pd.DataFrame(stats))
    got = recommend_in_process(root, "--user", "new-user", "--k", "5")
    assert got.returncode == 0, got.stderr
    assert "popularity fallback" in got.stdout
    rows = [line.split() for line in got.stdout.splitlines() if line.split()[:1] == ["1"]]
    assert rows, got.stdout
