"""Warehouse marts -> the Parquet files Feast reads as its offline sources.

One file per feature view under `<data>/features/offline/`, written by DuckDB's COPY from a
read-only connection, timestamps as microsecond UTC (Feast's file store mishandles nanosecond
Parquet timestamps). Each file is written beside its target and renamed into place, so a reader
never sees half a file. Knows nothing of Feast (cheap to import).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from common.paths import layout, warehouse_path
from common.warehouse import connect_read_only


@dataclass(frozen=True)
class OfflineTable:
    """A feature view's offline source: a dbt mart, its entity key and the columns it exports."""

    view: str
    relation: str
    join_key: str
    columns: tuple[str, ...]


USER_STATS = OfflineTable(
    view="user_reward_stats",
    relation="marts.user_reward_stats_daily",
    join_key="user_id",
    columns=(
        "user_n_events_day",
        "user_n_events",
        "user_n_rewarded",
        "user_reward_mean",
        "user_reward_std",
        "user_n_events_7d",
        "user_n_rewarded_7d",
        "user_reward_mean_7d",
    ),
)
ITEM_STATS = OfflineTable(
    view="title_reward_stats",
    relation="marts.item_reward_stats_daily",
    join_key="item_id",
    columns=(
        "item_n_events_day",
        "item_n_events",
        "item_n_rewarded",
        "item_reward_mean",
        "item_reward_std",
        "item_popularity_7d",
        "item_popularity_prev_7d",
        "item_trend_7d",
        "item_reward_mean_7d",
    ),
)
RECENT_HISTORY = OfflineTable(
    view="user_recent_history",
    relation="marts.user_recent_history",
    join_key="user_id",
    columns=("recent_item_ids", "recent_event_ts", "n_recent_events"),
)
OFFLINE_TABLES = (USER_STATS, ITEM_STATS, RECENT_HISTORY)


def offline_path(table: OfflineTable, root: Path | None = None) -> Path:
    """Absolute path of a view's Parquet file (the FileSource path)."""
    return (layout(root).features_offline / f"{table.view}.parquet").resolve()


def export_table(
    con: duckdb.DuckDBPyConnection, table: OfflineTable, root: Path | None = None
) -> dict[str, Any]:
    path = offline_path(table, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    columns = ", ".join(table.columns)
    # timestamptz -> Parquet TIMESTAMP(isAdjustedToUTC, MICROS); sorted so row groups are by time.
    con.execute(
        f"copy (select {table.join_key}, event_timestamp, {columns} from {table.relation} "
        f"order by event_timestamp, {table.join_key}) "
        f"to '{tmp}' (format parquet, compression zstd)"
    )
    tmp.replace(path)
    meta = pq.read_metadata(path)
    return {"rows": meta.num_rows, "path": str(path)}


def export_feature_tables(root: Path | None = None) -> dict[str, Any]:
    """Write every offline source from the warehouse; returns rows, paths and seconds per view."""
    warehouse = warehouse_path(root)
    if not warehouse.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse}: build the dbt models first")
    start = time.perf_counter()
    with connect_read_only(warehouse) as con:
        con.execute("set TimeZone = 'UTC'")
        missing = [t.relation for t in OFFLINE_TABLES if not _relation_exists(con, t.relation)]
        if missing:
            raise LookupError(f"warehouse {warehouse} lacks {missing}: run the dbt marts first")
        views = {t.view: export_table(con, t, root) for t in OFFLINE_TABLES}
    return {"views": views, "export_seconds": round(time.perf_counter() - start, 3)}


def _relation_exists(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    schema, name = relation.split(".")
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchone()[0]
    return bool(found)


def latest_timestamps(root: Path | None = None) -> dict[str, tuple[datetime, datetime]]:
    """(min, max) event_timestamp of each exported offline file that exists."""
    out = {}
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        for table in OFFLINE_TABLES:
            path = offline_path(table, root)
            if path.exists():
                lo, hi = con.execute(
                    f"select min(event_timestamp), max(event_timestamp) from read_parquet('{path}')"
                ).fetchone()
                if lo is not None:
                    out[table.view] = (lo, hi)
    return out


def offline_row_counts(root: Path | None = None) -> dict[str, int]:
    return {
        t.view: pq.read_metadata(offline_path(t, root)).num_rows
        for t in OFFLINE_TABLES
        if offline_path(t, root).exists()
    }
