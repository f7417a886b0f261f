"""Daily Parquet partitions: round trip, layout, idempotence and rows without a timestamp."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from watchlogs import SimulatorConfig, read_watch_logs, simulate, write_daily_partitions
from watchlogs.schema import conform


@pytest.fixture(scope="module")
def events() -> pa.Table:
    return simulate(SimulatorConfig.tiny(n_events=1200, n_days=10)).events


def test_round_trip_one_sorted_file_per_utc_day(events, tmp_path):
    files = write_daily_partitions(events, tmp_path, "simulator")
    days = sorted({d.strftime("%Y-%m-%d") for d in events["event_ts"].to_pylist()})
    assert [f.parent.name for f in files] == [f"date={d}" for d in days]
    assert all(f.name == "simulator.parquet" for f in files)
    for f in files:
        part = pq.read_table(f)
        assert pq.ParquetFile(f).metadata.row_group(0).column(0).compression == "ZSTD"
        stamps = part["event_ts"].to_pylist()
        assert stamps == sorted(stamps)
        assert {s.strftime("%Y-%m-%d") for s in stamps} == {f.parent.name[len("date=") :]}
    back = read_watch_logs(tmp_path)
    assert back.schema == events.schema
    assert back.equals(events)


def test_rewrite_is_idempotent_and_leaves_other_stems(events, tmp_path):
    first = write_daily_partitions(events, tmp_path, "simulator")
    again = write_daily_partitions(events, tmp_path, "simulator")
    assert first == again
    assert read_watch_logs(tmp_path).num_rows == events.num_rows

    # A shorter rewrite drops the stem's stale days; another producer's files stay.
    first_day = events["event_ts"][0].as_py().date()
    same_day = [ts.date() == first_day for ts in events["event_ts"].to_pylist()]
    day_one = events.filter(pa.array(same_day))
    other = write_daily_partitions(events.slice(0, 10), tmp_path, "other")
    write_daily_partitions(day_one, tmp_path, "simulator")
    stems = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("date=*/*.parquet"))
    assert len([s for s in stems if s.endswith("/simulator.parquet")]) == 1
    assert all(f.exists() for f in other)
    assert read_watch_logs(tmp_path).num_rows == day_one.num_rows + 10


def test_rows_without_timestamp_are_kept_and_extras_survive(events, tmp_path):
    table = events.slice(0, 5).append_column("rating_raw", pa.array([1.5, None, 3.0, 4.5, 5.0]))
    stamps = table["event_ts"].to_pylist()
    stamps[2] = None
    table = table.set_column(3, "event_ts", pa.array(stamps, type=table.schema.field(3).type))
    files = write_daily_partitions(table, tmp_path, "ml")
    assert files[-1].parent.name == "date=unknown"
    back = read_watch_logs(tmp_path)
    assert back.num_rows == 5
    assert back["event_ts"].null_count == 1
    assert back["event_ts"][4].as_py() is None  # undated rows last
    assert "rating_raw" in back.column_names
    assert sorted(back["event_id"].to_pylist()) == sorted(table["event_id"].to_pylist())


def test_empty_root_reads_as_an_empty_contract_table(tmp_path):
    empty = read_watch_logs(tmp_path / "nothing")
    assert empty.num_rows == 0
    assert empty.schema == conform(empty).schema


def test_invalid_stem_is_rejected(events, tmp_path):
    with pytest.raises(ValueError):
        write_daily_partitions(events, tmp_path, "../escape")
