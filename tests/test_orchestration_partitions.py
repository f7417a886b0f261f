"""Daily partitions: a single-run backfill of three days through the daily job (real Dagster, dbt
and DuckDB on tiny simulator data) rewrites just those days, equals the full build, and gives
identical tables when run twice."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from common.paths import raw_watch_logs_dir, warehouse_path
from orchestration.definitions import defs
from orchestration.resources import dbt_project
from tests.tiny_world import TINY, copy_world, data_dir_set_to
from watchlogs.partitioned import DayWindow, write_daily_partitions
from watchlogs.simulator import SimulatorConfig, simulate
from watchlogs.sources import produce_raw_watch_logs

BACKFILL = ("2025-01-08", "2025-01-10")  # three days inside the tiny world's 21
OUTSIDE = "2025-01-14"  # a day the backfill must not touch
MARK = 0.123456789  # a watch fraction no event has (within the column's tested range)
RAW = dg.AssetKey("raw_watch_logs")
DAILY_MODEL = dg.AssetKey(["marts", "fct_reward_events"])


def _range_tags(first: str, last: str) -> dict[str, str]:
    """What Dagster puts on the one run of a single-run backfill of first..last."""
    return {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }


def _raw_and_warehouse() -> list[dg.AssetKey]:
    job = defs.resolve_job_def("daily_refresh_job")
    return [
        k
        for k in job.asset_layer.selected_asset_keys
        if k == RAW or k.path[0] in ("staging", "intermediate", "marts")
    ]


def _backfill(instance: dg.DagsterInstance, first: str, last: str):
    """One run of the daily job's raw + warehouse assets over first..last."""
    result = defs.resolve_job_def("daily_refresh_job").execute_in_process(
        run_config={"ops": {"raw_watch_logs": {"config": TINY}}},
        instance=instance,
        asset_selection=_raw_and_warehouse(),
        tags=_range_tags(first, last),
    )
    assert result.success
    return result


def _tables() -> dict[str, list[tuple]]:
    """Every warehouse table (all schemas), rows sorted; the raw file a row came from is named
    from the raw folder on (the full build was made in the world's directory, not this copy)."""
    with duckdb.connect(str(warehouse_path()), read_only=True) as con:
        names = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' order by 1"
        ).fetchall()
        return {n: con.execute(f"select {_columns(con, n)} from {n} order by all").fetchall()
                for (n,) in names}  # fmt: skip


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> str:
    names = [c for (c,) in con.execute(
        "select column_name from information_schema.columns "
        "where table_schema || '.' || table_name = ? order by ordinal_position", [table],
    ).fetchall()]  # fmt: skip
    return ", ".join(
        f"regexp_replace({c}, '^.*/raw/watch_logs/', 'raw/watch_logs/') as {c}"
        if c == "source_file"
        else f'"{c}"'
        for c in names
    )


def _raw_bytes() -> dict[str, bytes]:
    raw = raw_watch_logs_dir()
    return {str(p.relative_to(raw)): p.read_bytes() for p in sorted(raw.glob("date=*/*.parquet"))}


def _watch_fraction_by_day(day: str) -> list:
    with duckdb.connect(str(warehouse_path()), read_only=True) as con:
        return con.execute(
            "select event_id, watch_fraction from marts.fct_reward_events "
            "where event_date = ? order by event_id",
            [day],
        ).fetchall()


def _tamper(days: list[str]) -> None:
    """Mark rows of `days` in a column no change detection looks at: only a rewrite restores it."""
    with duckdb.connect(str(warehouse_path())) as con:
        con.execute(
            f"update marts.fct_reward_events set watch_fraction = {MARK} "
            f"where event_date in ({', '.join('?' for _ in days)})",
            days,
        )


@pytest.fixture(scope="module")
def backfills(tiny_world, tmp_path_factory) -> Iterator[dict]:
    """The full build (the tiny world's copy: main_job built raw and the warehouse); tamper one
    backfill day and one other day; the backfill twice."""
    root = copy_world(tiny_world, tmp_path_factory.mktemp("partitions") / "data")
    with data_dir_set_to(root), dg.DagsterInstance.ephemeral() as instance:
        full, full_raw = _tables(), _raw_bytes()
        expected_outside = _watch_fraction_by_day(OUTSIDE)
        _tamper([BACKFILL[1], OUTSIDE])
        runs = []
        for _ in range(2):
            result = _backfill(instance, *BACKFILL)
            runs.append(
                {
                    "result": result,
                    "tables": _tables(),
                    "raw": _raw_bytes(),
                    "in_window": _watch_fraction_by_day(BACKFILL[1]),
                    "outside": _watch_fraction_by_day(OUTSIDE),
                }
            )
        yield {
            "full": full,
            "full_raw": full_raw,
            "expected_outside": expected_outside,
            "runs": runs,
            "materialized": {
                key: instance.get_materialized_partitions(key) for key in (RAW, DAILY_MODEL)
            },
        }


def test_a_backfill_of_three_days_run_twice_gives_identical_tables(backfills):
    first, second = backfills["runs"]
    assert first["tables"].keys() == second["tables"].keys()
    assert {"staging.stg_watch_events", "marts.fct_reward_events"} <= first["tables"].keys()
    for name, rows in first["tables"].items():
        # The simulator's events are clean: only the quarantine is empty.
        assert rows or name == "staging.quarantine_watch_events", f"{name} is empty"
        assert second["tables"][name] == rows, f"{name} changed on the second backfill run"
    assert second["raw"] == first["raw"]  # raw partitions byte-identical


def test_a_backfill_rewrites_its_days_leaves_the_others_and_equals_the_full_build(backfills):
    first = backfills["runs"][0]
    # The tampered backfill day was rewritten (with the full build's values); the tampered day
    # outside the backfill was not touched.
    assert first["in_window"] and all(fraction != MARK for _, fraction in first["in_window"])
    assert first["outside"] and all(fraction == MARK for _, fraction in first["outside"])
    # Apart from that untouched marker, every table equals the full build's.
    for name, rows in backfills["full"].items():
        if name == "marts.fct_reward_events":
            event_ids = {event_id for event_id, _ in backfills["expected_outside"]}
            rows = [r for r in rows if r[0] not in event_ids]
            got = [r for r in first["tables"][name] if r[0] not in event_ids]
            assert got == rows
        else:
            assert first["tables"][name] == rows, f"{name} differs from the full build"
    # Raw: the backfill rewrote its days byte for byte, and only them.
    assert first["raw"] == backfills["full_raw"]


def test_the_partitions_are_recorded_as_materialized(backfills):
    days = {f"2025-01-{d:02d}" for d in range(8, 11)}
    assert backfills["materialized"][RAW] == days
    assert backfills["materialized"][DAILY_MODEL] == days
    result = backfills["runs"][0]["result"]
    by_asset: dict[str, set] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        by_asset.setdefault(materialization.asset_key.to_user_string(), set()).add(
            materialization.partition
        )
    assert by_asset["raw_watch_logs"] == days
    assert by_asset["marts/fct_reward_events"] == days
    assert by_asset["marts/user_sequences"] == {None}  # whole-history tables: unpartitioned
    raw_meta = next(
        e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == RAW
    )
    assert raw_meta["days"].value == f"{BACKFILL[0]}..{BACKFILL[1]}"


def test_a_backfill_window_costs_dbt_no_parse(backfills):
    """The window reaches dbt as environment variables, which dbt reads when the models run: each
    dbt step starts from the parse the step before it kept (with `--vars`, dbt parsed the whole
    project again in the partitioned step and again in the next)."""
    first, second = (run["result"].run_id[:7] for run in backfills["runs"])
    steps = ("warehouse_models", "warehouse_daily_models", "warehouse_models_2")
    # The first run's first step has no kept parse of this directory yet: the world's was made
    # where the world was built, and the DuckDB path is part of dbt's profile.
    for run, step in [(first, s) for s in steps[1:]] + [(second, s) for s in steps]:
        (log,) = (dbt_project.project_dir / "target").glob(f"{step}-{run}-*/dbt.log")
        assert "Partial parsing enabled" in log.read_text(), (run, step)
        assert "Unable to do partial parsing" not in log.read_text(), (run, step)


def test_a_partitioned_write_keeps_other_days_and_producers(tmp_path: Path):
    events = simulate(SimulatorConfig.tiny()).events
    write_daily_partitions(events, tmp_path, file_stem="sim")
    write_daily_partitions(events.slice(0, 5), tmp_path, file_stem="other")
    before = {p: p.read_bytes() for p in tmp_path.glob("date=*/*.parquet")}
    days = sorted(p.parent.name.removeprefix("date=") for p in tmp_path.glob("date=*/sim.parquet"))
    first, last = dt.date.fromisoformat(days[2]), dt.date.fromisoformat(days[3])
    # Rewrite two days from a source that lost its first event (on the first day, outside the
    # window): only the window's files may be written, the first day must keep its event.
    window = DayWindow(first, last)
    written = write_daily_partitions(events.slice(1), tmp_path, "sim", window=window)
    assert [p.parent.name for p in written] == [f"date={days[2]}", f"date={days[3]}"]
    after = {p: p.read_bytes() for p in tmp_path.glob("date=*/*.parquet")}
    assert after.keys() == before.keys()
    changed = {p for p in after if after[p] != before[p]}
    assert changed <= set(written)


def test_a_partitioned_run_of_another_dataset_is_refused(tmp_path: Path):
    config = SimulatorConfig.tiny()
    produce_raw_watch_logs("simulator", tmp_path, config)
    window = DayWindow(dt.date(2025, 1, 2), dt.date(2025, 1, 2))
    other = dataclasses.replace(config, seed=config.seed + 1)
    with pytest.raises(ValueError, match="different dataset.*seed"):
        produce_raw_watch_logs("simulator", tmp_path, other, window=window)
    same = produce_raw_watch_logs("simulator", tmp_path, config, window=window)
    assert same["partitions"] == 1 and same["events"] > 0


def test_the_daily_schedule_runs_yesterdays_partition():
    schedule = defs.get_repository_def().get_schedule_def("daily_refresh_job_schedule")
    tick = schedule.evaluate_tick(
        dg.build_schedule_context(
            scheduled_execution_time=dt.datetime(2026, 1, 5, 2, tzinfo=dt.UTC),
            repository_def=defs.get_repository_def(),  # resolves the partitioned request
        )
    )
    (request,) = tick.run_requests
    assert request.partition_key == "2026-01-04"
