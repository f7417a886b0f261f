"""dbt runs against another DuckDB file by config (ASFT_WAREHOUSE_PATH), and the Python stages
read the same file through common.paths."""

from __future__ import annotations

import datetime as dt

import duckdb
from dbt_helpers import run_dbt, write_partition

from common.paths import warehouse_path


def _rows(day: str, n: int) -> list[dict]:
    start = dt.datetime.fromisoformat(f"{day}T12:00:00+00:00")
    return [
        {"event_id": f"{day}-{i}", "user_id": f"u{i % 3}", "item_id": f"i{i % 5}",
         "event_ts": start + dt.timedelta(minutes=90 * i), "watch_seconds": 600.0,
         "item_duration_seconds": 1200.0, "rating": None, "autoplay": False}
        for i in range(n)
    ]  # fmt: skip


def test_warehouse_path_override_builds_elsewhere(tmp_path, monkeypatch):
    data = tmp_path / "data"
    other = tmp_path / "elsewhere" / "warehouse.duckdb"
    other.parent.mkdir()
    for day in ("2025-01-01", "2025-01-02"):
        write_partition(data, day, _rows(day, 6))
    monkeypatch.setenv("ASFT_WAREHOUSE_PATH", str(other))
    run_dbt(["run", "--select", "+stg_watch_events"], data, tmp_path / "work")
    assert other.exists() and not (data / "warehouse.duckdb").exists()
    assert warehouse_path() == other.resolve()
    with duckdb.connect(str(other), read_only=True) as con:
        assert con.execute("select count(*) from staging.stg_watch_events").fetchone()[0] == 12
