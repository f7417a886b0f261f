"""A GX gate per stage: it passes on good data and fails on bad data (real Great Expectations,
real dbt for the warehouse stages). Limits come from validation/thresholds.py, never literals."""

from __future__ import annotations

import dataclasses
import functools
import math
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

try:
    from dbt_helpers import DBT_EXECUTABLE, run_dbt
except ModuleNotFoundError:
    from tests.dbt_helpers import DBT_EXECUTABLE, run_dbt

from validation.gate import run_gate as _run_gate
from validation.gate import run_warehouse_gate as _run_warehouse_gate
from validation.suites import SUITES
from validation.thresholds import dbt_vars, default_thresholds
from validation.views import read_warehouse_stage
from watchlogs.partitioned import write_daily_partitions
from watchlogs.simulator import SimulatorConfig, simulate

T = default_thresholds()
# Data Docs are exercised in test_validation_docs; here they would only cost time.
run_gate = functools.partial(_run_gate, update_docs=False)
run_warehouse_gate = functools.partial(_run_warehouse_gate, update_docs=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """Tiny simulated raw logs and the real dbt warehouse built from them."""
    root = tmp_path_factory.mktemp("gates")
    result = simulate(SimulatorConfig.tiny())
    write_daily_partitions(result.events, root / "raw" / "watch_logs", file_stem="simulator")
    if DBT_EXECUTABLE.exists():
        run_dbt(["build", "--exclude-resource-type", "unit_test"], root, root / "dbt_work")
    return {"root": root, "events": result.events}


def _failed(gate) -> set[str]:
    return {f.reason for f in gate.failed}


def _rows(gate, reason: str) -> set[int]:
    return {r for f in gate.failed if f.reason == reason for r in f.rows}


def test_every_stage_has_a_suite_with_thresholds_from_the_config():
    assert set(SUITES) >= {
        "raw_watch_logs",
        "staged_events",
        "sessions",
        "sequences",
        "splits",
        "user_features",
        "item_features",
        "reward_predictions",
        "advantages",
        "model_metrics",
    }
    dbt = dbt_vars()
    assert T.watch_seconds_slack == float(dbt["watch_seconds_slack"])
    assert T.future_tolerance_hours == float(dbt["future_tolerance_hours"])
    expectations = SUITES["raw_watch_logs"](T).expectations
    limits = {e.meta["reason"]: getattr(e, "max_value", None) for e in expectations}
    assert limits["watch_exceeds_duration"] == T.watch_seconds_slack
    assert limits["future_event_ts"] == T.future_tolerance_hours


def test_a_gate_leaves_no_frame_in_gx_after_it_ran(world):
    """GX's execution engine caches each asset's last batch for the cached context's lifetime:
    the gate empties it, or every event table's frame would stay resident through a run."""
    import gc

    from validation.context import DATASOURCE, get_context

    events: pa.Table = world["events"]
    for update_docs in (False, True):  # the validation definition, and the checkpoint
        gate = _run_gate("raw_watch_logs", events, root=world["root"], update_docs=update_docs,
                         catalogue=set(events["item_id"].to_pylist()))  # fmt: skip
        assert gate.success
        source = get_context(world["root"]).data_sources.get(DATASOURCE)
        manager = source.get_execution_engine().batch_manager
        assert manager.batch_data_cache == {} and manager.batch_cache == {}
        frame = gate.frame
        del gate
        gc.collect()
        assert [type(r).__name__ for r in gc.get_referrers(frame) if r is not locals()] == []


def test_gated_frames_hold_no_python_object_per_row_and_the_type_rule_still_holds(world):
    """Strings stay in Arrow memory and dates are datetime64 (a 10M-row frame of Python objects
    takes several GB); the raw contract's string type is that storage, and only it."""
    from validation.views import STRING, raw_view, staged_events_view

    events: pa.Table = world["events"]
    staged = events.append_column("event_date", pc.cast(events["event_ts"], pa.date32()))
    for frame in (raw_view(events, T), staged_events_view(staged, T)):
        assert not [c for c in frame.columns if frame[c].dtype == object]
        assert frame["event_id"].dtype == STRING
    assert staged_events_view(staged, T)["event_date_matches_ts"].all()
    assert run_gate("raw_watch_logs", events, root=world["root"]).success
    as_large = events.set_column(0, "event_id", pc.cast(events["event_id"], pa.large_string()))
    assert run_gate("raw_watch_logs", as_large, root=world["root"]).success
    as_ints = events.set_column(0, "event_id", pa.array(range(events.num_rows), pa.int64()))
    gate = run_gate("raw_watch_logs", as_ints, root=world["root"])
    assert "wrong_type_event_id" in _failed(gate)


def test_raw_gate_passes_good_logs_and_names_each_bad_row(world):
    events: pa.Table = world["events"]
    catalogue = set(events["item_id"].to_pylist())
    good = run_gate("raw_watch_logs", events, root=world["root"], catalogue=catalogue)
    assert good.success, good.summary()

    now = datetime.now(UTC)
    bad = events.slice(0, 12).to_pandas()
    duration = bad["item_duration_seconds"]
    bad.loc[0, "user_id"] = None
    bad.loc[1, "watch_seconds"] = duration[1] * (T.watch_seconds_slack + 0.01)
    bad.loc[2, "watch_seconds"] = duration[2] * T.watch_seconds_slack  # at the limit: fine
    bad.loc[3, "watch_seconds"] = -1.0
    bad.loc[4, "item_id"] = "never-released"
    bad.loc[5, "event_id"] = bad.loc[6, "event_id"]
    bad.loc[7, "event_ts"] = now + timedelta(hours=T.future_tolerance_hours + 1)
    bad.loc[8, "rating"] = T.rating_max + 1
    table = pa.Table.from_pandas(bad, preserve_index=False)
    gate = run_gate("raw_watch_logs", table, root=world["root"], catalogue=catalogue, now=now)
    assert not gate.success
    assert _rows(gate, "missing_user_id") == {0}
    assert _rows(gate, "watch_exceeds_duration") == {1}
    assert _rows(gate, "negative_watch_seconds") == {3}
    assert _rows(gate, "unknown_item_id") == {4}
    assert _rows(gate, "duplicate_event_id") == {5, 6}
    assert _rows(gate, "future_event_ts") == {7}
    assert _rows(gate, "rating_out_of_range") == {8}
    assert set(gate.row_reasons()) == {0, 1, 3, 4, 5, 6, 7, 8}
    assert "expect_column_values_to_not_be_null(user_id)" in gate.summary()
    assert "never-released" in gate.bad_rows_markdown()


def test_raw_gate_names_nan_and_infinite_floats_but_lets_nulls_pass(world):
    """pandas cannot tell a delivered NaN from a missing value; the gate reads Arrow, which can."""
    events: pa.Table = world["events"].slice(0, 6)
    catalogue = set(world["events"]["item_id"].to_pylist())

    def with_values(table: pa.Table, column: str, values: dict[int, float | None]) -> pa.Table:
        column_values = table[column].to_pylist()
        for row, value in values.items():
            column_values[row] = value
        i = table.schema.get_field_index(column)
        return table.set_column(i, column, pa.array(column_values, pa.float64()))

    table = with_values(events, "watch_seconds", {0: float("nan"), 1: float("inf"), 2: None})
    table = with_values(table, "item_duration_seconds", {3: float("inf")})
    assert table["watch_seconds"].null_count == 1  # row 2 is a real null, row 0 a NaN
    gate = run_gate("raw_watch_logs", table, root=world["root"], catalogue=catalogue)
    assert not gate.success
    assert _rows(gate, "non_finite_value") == {0, 1, 3}
    assert 2 not in gate.row_reasons()


def test_raw_gate_rejects_missing_columns_wrong_types_and_empty_tables(world):
    events: pa.Table = world["events"].slice(0, 20)
    missing = run_gate("raw_watch_logs", events.drop(["item_id"]), root=world["root"])
    assert "missing_contract_column" in {f.reason for f in missing.file_level_failures}
    as_text = events.set_column(3, "event_ts", events["event_ts"].cast(pa.string()))
    wrong = run_gate("raw_watch_logs", as_text, root=world["root"])
    assert {f.reason for f in wrong.file_level_failures} == {"wrong_type_event_ts"}
    empty = run_gate("raw_watch_logs", events.slice(0, 0), root=world["root"])
    assert {f.reason for f in empty.file_level_failures} == {"empty_table"}


needs_dbt = pytest.mark.skipif(not DBT_EXECUTABLE.exists(), reason="dbt is not installed")


def _stage_table(world, stage: str) -> tuple[pd.DataFrame, dict]:
    with duckdb.connect(str(world["root"] / "warehouse.duckdb"), read_only=True) as con:
        table, extra = read_warehouse_stage(con, stage)
    return table.to_pandas(), extra


@needs_dbt
@pytest.mark.parametrize(
    ("stage", "corrupt", "reason"),
    [
        (
            "staged_events",
            lambda f: f.assign(rating=f["rating"].fillna(0) * 0),
            "rating_out_of_range",
        ),
        ("staged_events", lambda f: f.assign(event_id=f["event_id"].iloc[0]), "duplicate_event_id"),
        (
            "sessions",
            lambda f: f.assign(session_end_ts=f["session_start_ts"] - pd.Timedelta(seconds=1)),
            "session_ends_before_start",
        ),
        ("sessions", lambda f: f.assign(n_events=0), "empty_session"),
        (
            "sequences",
            lambda f: f.assign(timestamps=f["timestamps"].map(lambda v: list(v)[::-1])),
            "unordered_timestamps",
        ),
        ("sequences", lambda f: f.assign(sequence_length=1), "sequence_too_short"),
        (
            "splits",
            lambda f: f.assign(split=np.where(f["split"] == "test", "train", f["split"])),
            "split_cutoff_violated",
        ),
        ("user_features", lambda f: f.assign(user_reward_mean=9.0), "reward_out_of_range"),
        ("item_features", lambda f: f.assign(item_n_events=-1), "negative_count"),
    ],
)
def test_warehouse_gates_pass_on_dbt_output_and_fail_on_corruption(world, stage, corrupt, reason):
    good = run_warehouse_gate(stage, root=world["root"])
    assert good.success, good.summary()
    frame, extra = _stage_table(world, stage)
    bad = run_gate(stage, pa.Table.from_pandas(corrupt(frame)), root=world["root"], **extra)
    assert not bad.success and reason in _failed(bad), bad.summary()


@needs_dbt
def test_feature_freshness_is_measured_against_the_last_event(world):
    frame, extra = _stage_table(world, "user_features")
    late = extra["last_event_ts"] + timedelta(days=T.feature_freshness_days + 1)
    stale = run_gate("user_features", pa.Table.from_pandas(frame), root=world["root"],
                     last_event_ts=late)  # fmt: skip
    assert "stale_features" in _failed(stale)


def _advantages(rng: np.random.Generator, n_states: int = 30, n_items: int = 8) -> pd.DataFrame:
    """Advantages as the contract defines them: A = r_hat - V(s), V(s) = E_{a~pi} r_hat(s, a);
    `state_weighted_advantage` = sum_a pi(a|s) A(s, a), zero up to rounding."""
    r_hat = rng.uniform(T.reward_min, T.reward_max, (n_states, n_items))
    logits = rng.normal(size=(n_states, n_items))
    pi = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    v = (pi * r_hat).sum(axis=1)
    logged = rng.integers(0, n_items, n_states)
    advantage = r_hat - v[:, None]
    return pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n_states)],
            "user_id": [f"u{i % 5}" for i in range(n_states)],
            "item_id": [f"i{a}" for a in logged],
            "event_ts": pd.date_range("2025-01-01", periods=n_states, freq="h", tz="UTC"),
            "reward": rng.integers(1, 6, n_states).astype(float),
            "r_hat_mean": r_hat[np.arange(n_states), logged],
            "r_hat_std": rng.uniform(0, 0.5, n_states),
            "v": v,
            "advantage": advantage[np.arange(n_states), logged],
            "state_weighted_advantage": (pi * advantage).sum(axis=1),
        }
    )


def test_advantage_gate_checks_bounds_finiteness_and_zero_state_mean(world):
    frame = _advantages(np.random.default_rng(0))
    assert run_gate("advantages", frame, root=world["root"]).success
    shifted = frame.assign(
        state_weighted_advantage=frame["state_weighted_advantage"]
        + 10 * T.state_weighted_advantage_tolerance
    )
    assert "state_advantage_not_zero" in _failed(
        run_gate("advantages", shifted, root=world["root"])
    )
    broken = frame.copy()
    broken.loc[0, "advantage"] = math.inf
    broken.loc[1, "advantage"] = T.advantage_abs_max + 0.5
    gate = run_gate("advantages", broken, root=world["root"])
    assert _rows(gate, "advantage_out_of_range") == {0, 1}
    assert _rows(gate, "non_finite_value") == {0}


def test_reward_prediction_gate(world):
    rng = np.random.default_rng(1)
    n = 40
    frame = pd.DataFrame(
        {
            "user_id": [f"u{i % 7}" for i in range(n)],
            "item_id": [f"i{i % 11}" for i in range(n)],
            "event_ts": pd.date_range("2025-01-01", periods=n, freq="h", tz="UTC"),
            "reward": rng.integers(1, 6, n).astype(float),
            "r_hat_mean": rng.uniform(T.reward_min, T.reward_max, n),
            "r_hat_std": rng.uniform(0, 1, n),
            "user_mean": rng.uniform(T.reward_min, T.reward_max, n),
            "item_mean": rng.uniform(T.reward_min, T.reward_max, n),
        }
    )
    assert run_gate("reward_predictions", frame, root=world["root"]).success
    bad = frame.copy()
    bad.loc[2, "r_hat_mean"] = np.nan
    bad.loc[3, "r_hat_std"] = -0.1
    bad.loc[4, "r_hat_mean"] = T.reward_max + 1
    gate = run_gate("reward_predictions", bad, root=world["root"])
    assert _rows(gate, "missing_r_hat_mean") == {2}
    assert _rows(gate, "negative_std") == {3}
    assert _rows(gate, "prediction_out_of_range") == {4}


def _report(policy_ndcg: float, popularity_ndcg: float) -> dict:
    def metrics(ndcg: float) -> dict:
        return {"ndcg@10": {"mean": ndcg, "ci95": 0.0}, "hr@10": {"mean": 2 * ndcg, "ci95": 0.0}}

    return {
        "policy": {"kind": "hstu", "split": "temporal"},
        "test": {
            "sim": {
                "temporal": {
                    "hstu": metrics(policy_ndcg),
                    "popularity": metrics(popularity_ndcg),
                    "data": {"users": 40},
                }
            }
        },
    }


def test_model_metrics_gate_floors_the_policy_at_the_popularity_baseline(world):
    pop = 0.1
    floor = T.policy_vs_popularity_min_ratio * pop
    assert run_gate("model_metrics", _report(floor + 0.01, pop), root=world["root"]).success
    below = run_gate("model_metrics", _report(floor - 0.01, pop), root=world["root"])
    assert _failed(below) == {"below_popularity_floor"}
    nan = run_gate("model_metrics", _report(float("nan"), pop), root=world["root"])
    assert "missing_value" in _failed(nan)
    lax = dataclasses.replace(T, policy_vs_popularity_min_ratio=0.0)
    assert run_gate("model_metrics", _report(floor - 0.01, pop), lax, world["root"]).success


def test_gate_results_are_stored_in_the_file_backed_context(world):
    gx_dir = world["root"] / "gx"
    assert (gx_dir / "expectations" / "raw_watch_logs.json").exists()
    assert (gx_dir / "checkpoints" / "raw_watch_logs.json").exists()
    assert any((gx_dir / "uncommitted" / "validations").rglob("*.json"))
