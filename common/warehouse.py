"""Read-only questions to the DuckDB warehouse (row counts, date ranges, the data report)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

# Timestamp columns a table's date range is read from, in order of preference.
_TIME_COLUMNS = ("event_ts", "event_timestamp", "session_start_ts")


def connect_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True)


def relation_stats(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> dict[str, Any]:
    """Row count and, where the relation has a time column, its min and max."""
    columns = {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchall()
    }
    if not columns:
        return {}
    relation = f'"{schema}"."{name}"'
    stats: dict[str, Any] = {
        "row_count": con.execute(f"select count(*) from {relation}").fetchone()[0]
    }
    time_column = next((c for c in _TIME_COLUMNS if c in columns), None)
    if time_column:
        lo, hi = con.execute(
            f"select min({time_column}), max({time_column}) from {relation}"
        ).fetchone()
        stats["date_range"] = f"{lo} .. {hi}"
    return stats


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    return con.execute(sql).fetchone()


def _counts_by(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in con.execute(sql).fetchall()}


def data_report_figures(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The data stage's headline figures, read from the marts dbt built."""
    events, users, titles, first, last = _one(
        con,
        "select count(*), count(distinct user_id), count(distinct item_id), "
        "min(event_ts), max(event_ts) from staging.stg_watch_events",
    )
    sessions, mean_len = _one(con, "select count(*), avg(n_events) from marts.fct_watch_sessions")
    valid_start, test_start = _one(con, "select valid_start, test_start from marts.split_cutoffs")
    return {
        "events": int(events),
        "users": int(users),
        "titles": int(titles),
        "sessions": int(sessions),
        "mean_events_per_session": round(float(mean_len or 0), 3),
        "quarantined_rows": int(
            _one(con, "select count(*) from staging.quarantine_watch_events")[0]
        ),
        "quarantine_reasons": _counts_by(
            con,
            "select quarantine_reason, count(*) from staging.quarantine_watch_events "
            "group by 1 order by 2 desc",
        ),
        "first_event": str(first),
        "last_event": str(last),
        "reward_sources": _counts_by(
            con, "select reward_source, count(*) from marts.fct_reward_events group by 1 order by 1"
        ),
        "sequences": int(_one(con, "select count(*) from marts.user_sequences")[0]),
        "temporal_split": {
            "valid_start": str(valid_start),
            "test_start": str(test_start),
            "events": _counts_by(
                con, "select split, count(*) from marts.split_temporal_events group by 1 order by 1"
            ),
        },
        "leave_one_out_events": _counts_by(
            con,
            "select split, count(*) from marts.split_leave_one_out_events group by 1 order by 1",
        ),
    }


def training_inputs(con: duckdb.DuckDBPyConnection) -> tuple[Any, Any, Any]:
    """`marts.user_sequences` as Arrow (the training contract) and the temporal cut-offs."""
    sequences = con.sql(
        "select user_id, event_ids, item_ids, timestamps, rewards, sequence_length as length "
        "from marts.user_sequences order by user_id"
    ).to_arrow_table()
    valid_start, test_start = _one(
        con, "select valid_start_ts, test_start_ts from marts.split_cutoffs"
    )
    return sequences, valid_start, test_start
