"""Point-in-time historical features through Feast's `get_historical_features` (file offline store).

A label at time t gets the latest feature row stamped at or before t (`<=`, Feast's rule). That is
safe for the dbt reward tables: a row stamped t summarises events strictly before t (end-of-day
stamps, see transforms/models/marts/user_reward_stats_daily.sql), so an event at exactly t never
sees itself. Rows stamped after t are never used.

Feast's file store drops entity rows whose entity has feature rows but none at or before t (and
collapses duplicate (key, t) rows); these helpers never drop rows: they query each distinct
(key, t) once, in chunks, and join the answers back onto the caller's frame (same rows, same
order, same index), NaN where no earlier feature row exists.

Speed: the file store merges each entity row with all of its entity's feature rows. When a view
never expires (ttl 0) and all its rows are stamped at UTC midnights (checked on the file), a
lookup at t equals one at t floored to the day, so each distinct (key, day) is asked once.
Measured on the default simulator data (1M events, 2 shared cores): about 2.3 CPU-s per 100k
events for user features and 3.0 for title features, peak RSS 2.5 GB (README, Feature store).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytz

from features.export import ITEM_STATS, USER_STATS, OfflineTable

USER_FEATURES: list[str] = [
    "user_reward_mean",
    "user_reward_std",
    "user_n_rewarded",
    "user_n_events",
    "user_reward_mean_7d",
    "user_n_events_7d",
]
ITEM_FEATURES: list[str] = [
    "item_reward_mean",
    "item_reward_std",
    "item_n_rewarded",
    "item_n_events",
    "item_popularity_7d",
    "item_trend_7d",
    "item_reward_mean_7d",
]
TIMESTAMP = "event_timestamp"
# Distinct (key, t) rows per Feast call: the file store merges every entity row with all of its
# entity's feature rows, so memory grows with chunk size x rows per entity.
CHUNK_ROWS = 100_000
_ROW = "__asft_row"


def historical_user_features(entity_df: pd.DataFrame, root: Path | None = None) -> pd.DataFrame:
    """entity_df (user_id: str, event_timestamp: tz-aware) + USER_FEATURES as float64."""
    return _historical(entity_df, USER_STATS, USER_FEATURES, root)


def historical_item_features(entity_df: pd.DataFrame, root: Path | None = None) -> pd.DataFrame:
    """entity_df (item_id: str, event_timestamp: tz-aware) + ITEM_FEATURES as float64."""
    return _historical(entity_df, ITEM_STATS, ITEM_FEATURES, root)


def historical_reward_features(entity_df: pd.DataFrame, root: Path | None = None) -> pd.DataFrame:
    """entity_df (user_id, item_id, event_timestamp) + USER_FEATURES + ITEM_FEATURES."""
    _check(entity_df, ["user_id", "item_id"])
    out = historical_user_features(entity_df, root)
    items = historical_item_features(entity_df[["item_id", TIMESTAMP]], root)
    for feature in ITEM_FEATURES:  # positional: the index need not be unique
        out[feature] = items[feature].to_numpy()
    return out


def _check(entity_df: pd.DataFrame, keys: list[str]) -> None:
    if not isinstance(entity_df, pd.DataFrame):
        raise TypeError(f"entity_df must be a pandas DataFrame, got {type(entity_df).__name__}")
    missing = [c for c in [*keys, TIMESTAMP] if c not in entity_df.columns]
    if missing:
        raise KeyError(f"entity_df lacks columns {missing}; it has {list(entity_df.columns)}")
    ts = entity_df[TIMESTAMP]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise TypeError(f"entity_df.{TIMESTAMP} must be tz-aware (UTC) datetimes, got {ts.dtype}")
    for column in [*keys, TIMESTAMP]:
        nulls = int(entity_df[column].isna().sum())
        if nulls:
            raise ValueError(f"entity_df.{column} has {nulls} null values")


def _historical(
    entity_df: pd.DataFrame, table: OfflineTable, features: list[str], root: Path | None
) -> pd.DataFrame:
    from features.store import feature_store  # Feast import costs seconds: only when used

    key = table.join_key
    _check(entity_df, [key])
    clash = sorted(set(features) & set(entity_df.columns))
    if clash:
        raise ValueError(f"entity_df already has feature columns {clash}")
    # Microsecond UTC, like the offline files; one query per distinct (key, t).
    when = entity_df[TIMESTAMP].dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    store = feature_store(root)
    if _day_stamped(store, table):
        # Every feature row is stamped at a UTC midnight and never expires, so a stamp s <= t
        # exactly when s <= floor(t, day): the same answer from far fewer distinct queries.
        when = when.dt.floor("D")
    keys = pd.DataFrame({key: entity_df[key].astype(str).to_numpy(), TIMESTAMP: when.array})
    # Group numbers in order of first appearance, the order drop_duplicates keeps.
    codes = keys.groupby([key, TIMESTAMP], sort=False).ngroup().to_numpy()
    distinct = keys.drop_duplicates().reset_index(drop=True)
    # pytz's UTC: Feast's file store converts any other tz object row by row in Python.
    distinct[TIMESTAMP] = distinct[TIMESTAMP].dt.tz_convert(pytz.UTC)
    distinct[_ROW] = np.arange(len(distinct))
    values = np.full((len(distinct), len(features)), np.nan)
    refs = [f"{table.view}:{f}" for f in features]
    # Sorted by key, so a chunk touches few entities' feature rows.
    distinct = distinct.sort_values([key, TIMESTAMP], kind="stable")
    for start in range(0, len(distinct), CHUNK_ROWS):
        chunk = distinct.iloc[start : start + CHUNK_ROWS]
        got = store.get_historical_features(entity_df=chunk, features=refs).to_df()
        rows = got[_ROW].to_numpy()
        values[rows] = got[features].to_numpy(dtype=np.float64, na_value=np.nan)
    out = entity_df.copy()
    picked = values[codes]
    for i, feature in enumerate(features):
        out[feature] = picked[:, i]
    return out


def _day_stamped(store, table: OfflineTable) -> bool:
    """True when the view never expires (ttl 0) and every row of its source file is stamped at a
    UTC midnight (the dbt daily tables are)."""
    import duckdb

    view = store.get_feature_view(table.view)
    if view.ttl and view.ttl.total_seconds() > 0:
        return False
    path = view.batch_source.path
    with duckdb.connect() as con:
        off_grid = con.execute(
            "select count(*) from read_parquet(?) "
            "where epoch_us(event_timestamp) % 86400000000 <> 0",
            [path],
        ).fetchone()[0]
    return off_grid == 0
