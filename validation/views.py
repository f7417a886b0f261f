"""The frames each stage's suite validates: the stage's table plus derived columns.

GX states rules on columns; rules that need arithmetic, lists, a reference set or "now" are turned
into a derived column here (e.g. `watch_fraction`, `hours_ahead_of_now`, `item_id_in_catalogue`)
so the suite can state them as plain column expectations. A derived column is null where it
cannot be computed (missing or wrongly typed inputs, no catalogue): the column, type or null
expectations report that instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from validation.thresholds import Thresholds
from watchlogs.schema import RAW_WATCH_LOG_SCHEMA

# Report metrics the model-metrics suite checks (all lie in [0, 1]); others (rmse...) are skipped.
RANKING_METRICS = ("ndcg@", "hr@", "recall@", "precision@", "mrr", "map@")
POPULARITY = "popularity"

# Strings stay in Arrow memory, not one Python object per row: a 10M-event table is validated as
# one frame (docs/results.md, the gate benchmark). The suites' "StringDtype" means this storage
# (validation.context runs every validation with it as pandas' string storage).
STRING_STORAGE = "pyarrow"
STRING = pd.StringDtype(STRING_STORAGE)

_NULLABLE = {
    pa.string(): STRING,
    pa.large_string(): STRING,
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow -> pandas keeping integer, bool and string types apart even with nulls; dates become
    datetime64 (not one Python object per row)."""
    return table.to_pandas(types_mapper=_NULLABLE.get, date_as_object=False)


def _as_arrow(data: pa.Table | pd.DataFrame) -> pa.Table:
    return data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)


def _typed_nulls(table: pa.Table) -> pa.Table:
    """All-null contract columns (Arrow type null) get the contract type: nothing to contradict."""
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type) and field.name in RAW_WATCH_LOG_SCHEMA.names:
            target = RAW_WATCH_LOG_SCHEMA.field(field.name).type
            table = table.set_column(i, field.name, pa.nulls(len(table), target))
    return table


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series | None:
    if column in frame and pd.api.types.is_numeric_dtype(frame[column]):
        return frame[column].astype("float64")
    return None


def _utc(series: pd.Series) -> pd.Series | None:
    if not pd.api.types.is_datetime64_any_dtype(series):
        return None
    return series.dt.tz_localize("UTC") if series.dt.tz is None else series.dt.tz_convert("UTC")


def _hours_ahead(frame: pd.DataFrame, column: str, now: datetime) -> pd.Series:
    ts = _utc(frame[column]) if column in frame else None
    if ts is None:
        return pd.Series(np.nan, index=frame.index)
    return (ts - pd.Timestamp(now).tz_convert("UTC")) / pd.Timedelta(hours=1)


def _contract_floats_finite(table: pa.Table) -> pd.Series:
    """True per row where every float column of the contract is null or a finite number.

    Read from Arrow, where a null and a NaN are different things (pandas turns both into NaN):
    a NaN or an infinity that was delivered is a broken value, not a missing one."""
    ok = pa.array([True] * len(table), pa.bool_())
    for field in RAW_WATCH_LOG_SCHEMA:
        if not pa.types.is_floating(field.type) or field.name not in table.column_names:
            continue
        column = table.column(field.name)
        if not pa.types.is_floating(column.type):
            continue  # integers are finite; a wrong type is its own (file-level) rule
        ok = pc.and_(ok, pc.fill_null(pc.is_finite(column), True))
    return pd.Series(ok.to_numpy(zero_copy_only=False), dtype="boolean")


def _watch_fraction(frame: pd.DataFrame) -> pd.Series:
    watch, duration = _numeric(frame, "watch_seconds"), _numeric(frame, "item_duration_seconds")
    if watch is None or duration is None:
        return pd.Series(np.nan, index=frame.index)
    return (watch / duration.where(duration > 0)).replace([np.inf, -np.inf], np.nan)


def _membership(frame: pd.DataFrame, column: str, values: Iterable[str] | None, inside: bool):
    if values is None or column not in frame:
        return pd.Series(pd.NA, index=frame.index, dtype="boolean")
    found = frame[column].astype(STRING).isin(list(set(values)))  # Arrow's is_in
    return (found if inside else ~found).astype("boolean")


def raw_view(
    data: pa.Table | pd.DataFrame,
    t: Thresholds,
    *,
    now: datetime | None = None,
    catalogue: Iterable[str] | None = None,
    existing_event_ids: Iterable[str] | None = None,
) -> pd.DataFrame:
    """A raw watch log (partitions or a delivery) as delivered, plus the derived rule columns."""
    table = _typed_nulls(_as_arrow(data))
    frame = arrow_to_frame(table)
    frame["contract_floats_finite"] = _contract_floats_finite(table).set_axis(frame.index)
    frame["watch_fraction"] = _watch_fraction(frame)
    frame["hours_ahead_of_now"] = _hours_ahead(frame, "event_ts", now or datetime.now(UTC))
    for column in set(RAW_WATCH_LOG_SCHEMA.names) & set(frame.columns):
        if frame[column].dtype == object:  # dates, decimals...: never a contract dtype
            frame[column] = frame[column].astype(STRING)
    if "event_ts" in frame and isinstance(frame["event_ts"].dtype, pd.DatetimeTZDtype):
        # GX cannot name a tz-aware dtype: compare as naive UTC (conform() reads naive as UTC).
        frame["event_ts"] = frame["event_ts"].dt.tz_convert("UTC").dt.tz_localize(None)
    frame["item_id_in_catalogue"] = _membership(frame, "item_id", catalogue, inside=True)
    frame["event_id_is_new"] = _membership(frame, "event_id", existing_event_ids, inside=False)
    return frame


def staged_events_view(
    data: pa.Table | pd.DataFrame, t: Thresholds, *, now: datetime | None = None
) -> pd.DataFrame:
    frame = arrow_to_frame(_as_arrow(data))
    frame["watch_fraction"] = _watch_fraction(frame)
    frame["hours_ahead_of_now"] = _hours_ahead(frame, "event_ts", now or datetime.now(UTC))
    # Compared as midnights, not as Python date objects (one object per row).
    utc_day = _utc(frame["event_ts"]).dt.tz_localize(None).dt.normalize()
    day = pd.to_datetime(frame["event_date"])
    frame["event_date_matches_ts"] = (utc_day == day).astype("boolean")
    return frame


def sessions_view(data: pa.Table | pd.DataFrame, t: Thresholds) -> pd.DataFrame:
    return arrow_to_frame(_as_arrow(data))


def _ordered(values: Any) -> bool:
    arr = np.asarray(values if values is not None else [], dtype="float64")
    return bool(np.all(np.diff(arr) >= 0))


def sequences_view(data: pa.Table | pd.DataFrame, t: Thresholds) -> pd.DataFrame:
    """One row per user sequence; list columns are summarised (ordered, aligned, reward range)."""
    frame = arrow_to_frame(_as_arrow(data))
    lists = ("item_ids", "timestamps", "rewards")
    n = frame["sequence_length"].astype("Int64")
    frame["timestamps_ordered"] = frame["timestamps"].map(_ordered).astype("boolean")
    aligned = pd.Series(True, index=frame.index)
    for column in lists:
        aligned &= frame[column].map(lambda v: 0 if v is None else len(v)) == n
    frame["lists_aligned"] = aligned.astype("boolean")
    rewards = frame["rewards"].map(lambda v: np.asarray(v if v is not None else [], "float64"))
    frame["reward_min"] = rewards.map(lambda a: a.min() if a.size else np.nan)
    frame["reward_max"] = rewards.map(lambda a: a.max() if a.size else np.nan)
    drop = [c for c in frame.columns if frame[c].dtype == object and c != "user_id"]
    return frame.drop(columns=drop)


def splits_view(data: pa.Table | pd.DataFrame, t: Thresholds) -> pd.DataFrame:
    """Split-labelled events with the cut-offs beside each row (valid_start_ts, test_start_ts)."""
    frame = arrow_to_frame(_as_arrow(data))
    ts, valid, test = (_utc(frame[c]) for c in ("event_ts", "valid_start_ts", "test_start_ts"))
    split = frame["split"].astype("string")
    respects = (
        ((split == "train") & (ts < valid))
        | ((split == "valid") & (ts >= valid) & (ts < test))
        | ((split == "test") & (ts >= test))
    )
    frame["respects_cutoffs"] = respects.fillna(False).astype("boolean")
    frame["cutoffs_ordered"] = (valid < test).astype("boolean")
    return frame


def features_view(
    data: pa.Table | pd.DataFrame, t: Thresholds, *, last_event_ts: datetime
) -> pd.DataFrame:
    """A Feast offline table; `days_behind_last_event` measures freshness against the data."""
    frame = arrow_to_frame(_as_arrow(data))
    frame = frame.drop(columns=[c for c in frame.columns if c == "events_fingerprint"])
    stamp = _utc(frame["event_timestamp"])
    last = pd.Timestamp(last_event_ts)
    last = last.tz_localize("UTC") if last.tz is None else last.tz_convert("UTC")
    frame["days_behind_last_event"] = (last - stamp) / pd.Timedelta(days=1)
    return frame


def _all_finite(frame: pd.DataFrame) -> pd.Series:
    numeric = frame.select_dtypes("number").astype("float64")
    return (~numeric.isin([np.inf, -np.inf]).any(axis=1)).astype("boolean")


def reward_predictions_view(data: pa.Table | pd.DataFrame, t: Thresholds) -> pd.DataFrame:
    frame = arrow_to_frame(_as_arrow(data))
    frame["all_finite"] = _all_finite(frame)
    return frame


def advantages_view(data: pa.Table | pd.DataFrame, t: Thresholds) -> pd.DataFrame:
    frame = arrow_to_frame(_as_arrow(data))
    frame["all_finite"] = _all_finite(frame)
    return frame


def _metric_value(value: Any) -> float | None:
    if isinstance(value, dict) and "mean" in value:
        value = value["mean"]
    return None if value is None else float(value)


def model_metrics_view(report: dict[str, Any], t: Thresholds) -> pd.DataFrame:
    """A stage report's test metrics, one row per (dataset, split, method, metric).

    `margin_over_floor` is set on the policy's ndcg@10 (report["policy"]: kind and split):
    its value minus `policy_vs_popularity_min_ratio` x popularity's on the same dataset and split.
    """
    rows = []
    policy = report.get("policy") or {}
    for dataset, splits in (report.get("test") or {}).items():
        for split, methods in splits.items():
            popularity = (methods.get(POPULARITY) or {}).get("ndcg@10")
            for method, metrics in methods.items():
                if not isinstance(metrics, dict):
                    continue
                for metric, raw in metrics.items():
                    if not metric.startswith(RANKING_METRICS):
                        continue
                    value = _metric_value(raw)
                    margin = None
                    is_policy = method == policy.get("kind") and split == policy.get("split")
                    if is_policy and metric == "ndcg@10" and popularity is not None:
                        floor = t.policy_vs_popularity_min_ratio * _metric_value(popularity)
                        margin = value - floor
                    rows.append(
                        {
                            "dataset": dataset,
                            "split": split,
                            "method": method,
                            "metric": metric,
                            "value": value,
                            "margin_over_floor": margin,
                        }
                    )
    frame = pd.DataFrame(
        rows, columns=["dataset", "split", "method", "metric", "value", "margin_over_floor"]
    )
    frame["value"] = frame["value"].astype("float64")
    frame["margin_over_floor"] = frame["margin_over_floor"].astype("float64")
    frame["is_finite"] = (~frame["value"].isin([np.inf, -np.inf])).astype("boolean")
    frame["value"] = frame["value"].replace([np.inf, -np.inf], np.nan).where(frame["is_finite"])
    return frame


VIEWS: dict[str, Callable[..., pd.DataFrame]] = {
    "raw_watch_logs": raw_view,
    "staged_events": staged_events_view,
    "sessions": sessions_view,
    "sequences": sequences_view,
    "splits": splits_view,
    "user_features": features_view,
    "item_features": features_view,
    "reward_predictions": reward_predictions_view,
    "advantages": advantages_view,
    "model_metrics": model_metrics_view,
}

# Where the warehouse stages read their table (dbt relations).
WAREHOUSE_QUERIES: dict[str, str] = {
    "staged_events": "select * from staging.stg_watch_events",
    "sessions": "select * from marts.fct_watch_sessions",
    "sequences": "select * from marts.user_sequences",
    "splits": (
        "select e.event_id, e.user_id, e.item_id, e.event_ts, e.split, "
        "c.valid_start_ts, c.test_start_ts "
        "from marts.split_temporal_events e cross join marts.split_cutoffs c"
    ),
    "user_features": "select * from marts.user_reward_stats_daily",
    "item_features": "select * from marts.item_reward_stats_daily",
}


def read_warehouse_stage(
    con: duckdb.DuckDBPyConnection, stage: str
) -> tuple[pa.Table, dict[str, Any]]:
    """A warehouse stage's table and the extra arguments its view needs."""
    con.execute("set TimeZone = 'UTC'")
    table = con.sql(WAREHOUSE_QUERIES[stage]).to_arrow_table()
    extra: dict[str, Any] = {}
    if stage in ("user_features", "item_features"):
        extra["last_event_ts"] = con.execute(
            "select max(event_ts) from staging.stg_watch_events"
        ).fetchone()[0]
    return table, extra
