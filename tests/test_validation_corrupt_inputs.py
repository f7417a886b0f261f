"""Bad input loses nothing: corrupt deliveries through the landing path and the real Dagster job.

The good state is a copy of the session's tiny world (tests/tiny_world.py: raw, warehouse, feature
store, pretrained policy), copied again per test. Each corrupt delivery must: fail the blocking
raw gate with ERROR naming the expectation and the rows; land in quarantine with the reason (rows
or the whole file); stop every downstream asset; leave raw, the warehouse (every table compared),
features and models untouched. Fixed deliveries of the same names then give the same raw data and
warehouse as a run where the bad files never arrived.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestration.definitions import defs
from tests.tiny_world import TINY, copy_world
from validation.paths import landing_dir, quarantine_dir
from validation.thresholds import default_thresholds
from watchlogs.partitioned import read_watch_logs

T = default_thresholds()
DELIVERY_ROWS = 24
# Outside these, a refused delivery must leave the data directory byte for byte as it was.
MUTABLE = ("landing", "quarantine", "gx")
# The fix-and-rerun comparison needs raw and the warehouse (and their gates), not training.
RAW_AND_WAREHOUSE = dg.AssetSelection.assets("raw_watch_logs") | dg.AssetSelection.key_prefixes(
    ["staging"], ["intermediate"], ["marts"]
)


def _run(root: Path, source: str, selection: dg.AssetSelection | None = None, **raw):
    """main_job in-process on `root` (all of it, or the selection)."""
    os.environ["ASFT_DATA_DIR"] = str(root)
    run_config = {"ops": {"raw_watch_logs": {"config": {**TINY, **raw, "source": source}}}}
    keys = None
    if selection is not None:
        keys = list(selection.resolve(defs.get_repository_def().asset_graph))
    with dg.DagsterInstance.ephemeral() as instance:
        return defs.resolve_job_def("main_job").execute_in_process(
            run_config=run_config, instance=instance, raise_on_error=False, asset_selection=keys
        )


@pytest.fixture(scope="module")
def good_state(tiny_world, tmp_path_factory) -> Iterator[Path]:
    """Raw logs, warehouse, feature store and a pretrained policy: the tiny world's copy."""
    previous = os.environ["ASFT_DATA_DIR"]
    yield copy_world(tiny_world, tmp_path_factory.mktemp("corrupt") / "good")
    os.environ["ASFT_DATA_DIR"] = previous


def good_delivery(root: Path, name: str) -> pa.Table:
    """New events of known users and titles, the days after the prepared data (deterministic)."""
    raw = read_watch_logs(root / "raw" / "watch_logs")
    rng = np.random.default_rng(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16))
    picked = raw.take(pa.array(np.sort(rng.choice(raw.num_rows, DELIVERY_ROWS, replace=False))))
    shifted = [t + timedelta(days=TINY["n_days"]) for t in picked["event_ts"].to_pylist()]
    stem = Path(name).stem
    picked = picked.set_column(
        0, "event_id", pa.array([f"{stem}-{i:03d}" for i in range(DELIVERY_ROWS)], pa.string())
    )
    return picked.set_column(3, "event_ts", pa.array(shifted, pa.timestamp("us", tz="UTC")))


def _set(table: pa.Table, column: str, row: int, value) -> pa.Table:
    values = table[column].to_pylist()
    values[row] = value
    i = table.schema.get_field_index(column)
    return table.set_column(i, column, pa.array(values, table.schema.field(column).type))


def _existing_event_id(root: Path) -> str:
    return read_watch_logs(root / "raw" / "watch_logs")["event_id"][0].as_py()


# name -> (make the corrupt delivery from a good one, expected reason, bad rows, quarantine kind)
CASES: dict[str, tuple[Callable, str, set[int] | None, str]] = {
    "null_keys": (lambda t, r: _set(t, "user_id", 2, None), "missing_user_id", {2}, "held"),
    "negative_watch": (
        lambda t, r: _set(t, "watch_seconds", 3, -5.0),
        "negative_watch_seconds",
        {3},
        "held",
    ),
    "watch_longer_than_title": (
        lambda t, r: _set(
            t,
            "watch_seconds",
            4,
            t["item_duration_seconds"][4].as_py() * (T.watch_seconds_slack + 0.5),
        ),
        "watch_exceeds_duration",
        {4},
        "held",
    ),
    "non_finite_watch": (
        lambda t, r: _set(
            _set(t, "watch_seconds", 1, float("nan")), "watch_seconds", 2, float("inf")
        ),
        "non_finite_value",
        {1, 2},
        "held",
    ),
    "unknown_title": (
        lambda t, r: _set(t, "item_id", 5, "no-such-title"),
        "unknown_item_id",
        {5},
        "held",
    ),
    "duplicate_in_delivery": (
        lambda t, r: _set(t, "event_id", 7, t["event_id"][6].as_py()),
        "duplicate_event_id",
        {6, 7},
        "held",
    ),
    "duplicate_of_raw_event": (
        lambda t, r: _set(t, "event_id", 8, _existing_event_id(r)),
        "duplicate_event_id",
        {8},
        "held",
    ),
    "future_timestamp": (
        lambda t, r: _set(
            t, "event_ts", 9, datetime.now(UTC) + timedelta(hours=T.future_tolerance_hours + 2)
        ),
        "future_event_ts",
        {9},
        "held",
    ),
    "missing_column": (lambda t, r: t.drop(["item_id"]), "missing_contract_column", None, "files"),
    "wrong_type": (
        lambda t, r: t.set_column(4, "watch_seconds", t["watch_seconds"].cast(pa.string())),
        "wrong_type_watch_seconds",
        None,
        "files",
    ),
    "empty_partition": (lambda t, r: t.slice(0, 0), "empty_table", None, "files"),
    "unreadable_parquet": (lambda t, r: None, "unreadable", None, "files"),
}


def deliver(root: Path, name: str, table: pa.Table | None) -> Path:
    path = landing_dir(root) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if table is None:  # a truncated upload: Parquet magic, then garbage
        path.write_bytes(b"PAR1" + os.urandom(512))
    else:
        pq.write_table(table, path)
    return path


def _file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] not in MUTABLE
    }


def warehouse_tables(root: Path) -> dict[str, pa.Table]:
    """Every warehouse table, rows in a canonical order, run-specific values normalised."""
    tables = {}
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        names = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema in ('staging', 'intermediate', 'marts') order by 1"
        ).fetchall()
        for (name,) in names:
            columns = [
                c
                for (c,) in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema || '.' || table_name = ? order by ordinal_position",
                    [name],
                ).fetchall()
                if c != "quarantined_at"  # when the row was quarantined: differs per run
            ]
            select = ", ".join(
                f"replace(cast({c} as varchar), '{root}', '<data>') as {c}"
                if c in ("source_file", "raw_record")
                else c
                for c in columns
            )
            tables[name] = con.sql(f"select {select} from {name} order by all").to_arrow_table()
    return tables


def _raw_rows(root: Path) -> pa.Table:
    raw = read_watch_logs(root / "raw" / "watch_logs")
    return raw.take(pa.array(np.argsort(raw["event_id"].to_numpy(zero_copy_only=False))))


@pytest.mark.parametrize("case", list(CASES))
def test_corrupt_delivery_is_quarantined_and_stops_the_chain(good_state, tmp_path, case):
    make, reason, bad_rows, kind = CASES[case]
    root = copy_world(good_state, tmp_path / "data")
    before_files, before_tables = _file_hashes(root), warehouse_tables(root)
    name = f"{case}.parquet"
    corrupt = make(good_delivery(root, name), root)
    deliver(root, name, corrupt)

    result = _run(root, "landing")

    assert not result.success
    (check,) = [
        c for c in result.get_asset_check_evaluations() if c.check_name == "gx_raw_contract"
    ]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    text = f"{check.description}\n{check.metadata['failures'].value}"
    assert name in text and reason in text
    if bad_rows:  # the error names the expectation and the rows
        assert "expect_column_values_to" in text
        sample = check.metadata["bad_rows_sample"].value
        assert all(corrupt["event_id"][r].as_py() in sample for r in bad_rows)
    assert Path(check.metadata["data_docs"].value).exists()  # a failing gate publishes Data Docs
    materialized = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert materialized == {"raw_watch_logs"}  # downstream assets did not run

    assert _file_hashes(root) == before_files  # raw, warehouse, features, models untouched
    after_tables = warehouse_tables(root)
    assert after_tables.keys() == before_tables.keys()
    assert all(after_tables[k].equals(before_tables[k]) for k in before_tables)
    assert not list(landing_dir(root).glob("*.parquet"))

    folder = quarantine_dir(root) / kind
    assert (folder / name).exists()
    why = json.loads((folder / f"{name}.reason.json").read_text())
    assert why["delivery"] == name and reason in json.dumps(why)
    if bad_rows:
        rows = pq.read_table(quarantine_dir(root) / "rows" / name).to_pylist()
        assert {r["delivery_row"] for r in rows} == bad_rows
        assert all(reason in r["quarantine_reason"] for r in rows)
        assert all(r["delivery_file"] == name and r["failed_expectation"] for r in rows)


def test_fixed_deliveries_give_the_result_of_never_having_had_bad_ones(good_state, tmp_path):
    names = [f"{case}.parquet" for case in CASES]
    # Reference: the good deliveries arrive first time.
    clean = copy_world(good_state, tmp_path / "clean")
    for name in names:
        deliver(clean, name, good_delivery(clean, name))
    assert _run(clean, "landing", RAW_AND_WAREHOUSE).success

    # The same deliveries arrive corrupt (all refused, nothing changes), then fixed.
    fixed = copy_world(good_state, tmp_path / "fixed")
    before = warehouse_tables(fixed)
    for case, name in zip(CASES, names, strict=True):
        deliver(fixed, name, CASES[case][0](good_delivery(fixed, name), fixed))
    refused = _run(fixed, "landing", RAW_AND_WAREHOUSE)
    assert not refused.success
    assert all(warehouse_tables(fixed)[k].equals(v) for k, v in before.items())
    for name in names:
        deliver(fixed, name, good_delivery(fixed, name))
    rerun = _run(fixed, "landing", RAW_AND_WAREHOUSE)
    assert rerun.success
    checks = rerun.get_asset_check_evaluations()
    assert {c.check_name for c in checks} >= {"gx_raw_contract", "gx_staged_events"}
    assert all(c.passed for c in checks)

    assert _raw_rows(fixed).equals(_raw_rows(clean))
    assert _raw_rows(fixed).num_rows == _raw_rows(good_state).num_rows + len(names) * DELIVERY_ROWS
    after, reference = warehouse_tables(fixed), warehouse_tables(clean)
    assert after.keys() == reference.keys()
    different = [k for k in reference if not after[k].equals(reference[k])]
    assert not different
