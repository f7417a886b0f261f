"""The robustness study on a tiny real world (simulator -> dbt -> Feast -> pretrained policy,
built by the main job in a private data directory): every level trains without the oracle,
the re-derived reward features agree with Feast's, the tables and judge validity come out, and
the Dagster job (its own Definitions, off main_job) runs configs-shaped settings end to end."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import yaml

from common.layout import DataLayout
from orchestration.definitions import defs, robustness_defs
from tests.tiny_world import copy_world, data_dir_set_to
from training.robustness.condition import with_event_rewards
from training.robustness.rewardstats import with_rewards
from training.robustness.settings import RobustnessSettings
from training.robustness.study import add_truth, runs_frame, train_conditions
from training.robustness.world import load_world
from watchlogs.oracle import Oracle

ROOT = Path(__file__).resolve().parents[1]
SMALL = {
    "kinds": ["noise", "habit"],
    "levels": {"noise": [0.0, 1.0], "habit": [0.0, 2.0]},
    "methods": ["bc", "asft", "exprsft", "ppo"],
    "betas": [0.1],
    "method_betas": {"asft": [0.1, 1.0], "exprsft": [1.0]},
    "seeds": [0, 1],
    "steps": 2,
    "batch_size": 8,
    "eval_users": 20,
    "max_ranking_targets": 200,
    "members": 2,
    "reward_epochs": 2,
    "judge_encoder_epochs": 1,
    "max_train_events": 2000,
    "feast_check_rows": 50,
}


def settings() -> RobustnessSettings:
    return RobustnessSettings(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in SMALL.items()})  # fmt: skip


@pytest.fixture(scope="module")
def root(tiny_world, tmp_path_factory):
    """Upstream of the study only (raw -> warehouse -> Feast, the pretrained policy): a copy of
    the tiny world, so no other test module's data is touched."""
    root = copy_world(tiny_world, tmp_path_factory.mktemp("robustness") / "data")
    with data_dir_set_to(root):
        yield root


def test_levels_train_without_the_oracle_then_truth_is_added(root):
    s = settings()
    oracle_dir, hidden = DataLayout(root).oracle, root / "oracle-hidden"
    oracle_dir.rename(hidden)  # nothing before evaluation may read it: it is not there
    try:
        world = load_world(root, s, log=lambda _: None)
        results = train_conditions(world, s, log=lambda _: None)
    finally:
        hidden.rename(oracle_dir)
    assert [(c.kind, c.level) for c in results] == [("clean", 0.0), ("noise", 1.0), ("habit", 2.0)]
    assert all("true_satisfaction" not in r.metrics for c in results for r in c.runs)
    # 1 pretrained + (bc, asft x 2, exprsft, ppo) x 2 seeds per level
    assert all(len(c.runs) == 11 for c in results)

    add_truth(results, world, Oracle.load(oracle_dir), s)
    frame = runs_frame(results, s.kinds)
    assert frame["true_satisfaction"].notna().all()
    assert set(frame["kind"]) == {"noise", "habit"} and len(frame) == 4 * 11
    assert np.isfinite(frame["reward_truth_spearman"]).all()

    # Level 0: the re-derived user reward features are Feast's; the corrupted ones differ.
    data, tables = world.data, world.tables
    clean = with_rewards(tables, data, data.events.rewards, None)
    cols = [tables.user_names.index(f"user_{c}") for c in ("reward_mean", "reward_std")]
    assert np.allclose(clean.user[..., cols], tables.user[..., cols], atol=1e-4, equal_nan=True)
    noisy = data.events.rewards + 1.0
    moved = with_rewards(tables, with_event_rewards(data, noisy), noisy, None)
    assert not np.allclose(moved.user[..., cols], tables.user[..., cols], equal_nan=True)


def test_robustness_job_runs_off_main_job_and_reports(root):
    main_keys = defs.resolve_job_def("main_job").asset_layer.executable_asset_keys
    assert dg.AssetKey("robustness_study") not in main_keys
    job = robustness_defs.resolve_job_def("robustness_job")
    dg.validate_run_config(job, yaml.safe_load((ROOT / "configs/robustness.yaml").read_text()))
    one_kind = SMALL | {"kinds": ["noise"], "levels": {"noise": [0.0, 1.0]}}
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            run_config={"ops": {"robustness_study": {"config": one_kind}}}, instance=instance
        )
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert "| noise | 1 | asft |" in meta["results"].value
    assert "Judge validity" in meta["results"].value
    report = json.loads((DataLayout(root).reports / "robustness.json").read_text())
    assert report["simulator_ground_truth"] and report["crossovers"]
    validity = report["judge_validity"]
    assert [(r["kind"], r["level"]) for r in validity] == [("noise", 0.0), ("noise", 1.0)]
    assert {"judge_kendall", "independent_judge_spearman"} <= set(validity[0])
    for name in ("plot", "table_csv", "runs_csv", "validity_csv"):
        assert Path(meta[name].value).exists()
