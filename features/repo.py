"""The Feast repo: entities user and title, the reward-statistics feature views, the reward
model's FeatureService. Sources are Parquet files under the data directory (absolute paths,
explicit ParquetFormat), so the objects are built per data directory by `repo_objects`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Array, Float64, Int64, String

from features.export import ITEM_STATS, RECENT_HISTORY, USER_STATS, OfflineTable, offline_path

user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.STRING,
    description="A viewer (user_id of the watch logs).",
)
title = Entity(
    name="title",
    join_keys=["item_id"],
    value_type=ValueType.STRING,
    description="A title of the catalogue (item_id of the watch logs).",
)

FEATURE_SERVICE = "reward_model_features"

# Counts are Int64 in the warehouse; every other figure is a float.
_TYPES = {"recent_item_ids": Array(String), "recent_event_ts": Array(Float64)}


def _dtype(column: str):
    if column in _TYPES:
        return _TYPES[column]
    counts = ("_n_", "popularity")
    return Int64 if any(c in column for c in counts) or column.startswith("n_") else Float64


def _source(table: OfflineTable, root: Path | None) -> FileSource:
    return FileSource(
        name=f"{table.view}_source",
        path=str(offline_path(table, root)),
        file_format=ParquetFormat(),
        timestamp_field="event_timestamp",
        description=f"{table.relation} exported to Parquet (features.export).",
    )


def _view(
    table: OfflineTable, entity: Entity, root: Path | None, ttl: timedelta, description: str
) -> FeatureView:
    return FeatureView(
        name=table.view,
        entities=[entity],
        ttl=ttl,
        schema=[Field(name=c, dtype=_dtype(c)) for c in table.columns],
        source=_source(table, root),
        online=True,
        description=description,
        tags={"dbt_model": table.relation},
    )


def repo_objects(root: Path | None = None, ttl: timedelta = timedelta(0)) -> list:
    """Entities, feature views and the FeatureService of the data directory `root`.

    ttl 0 = no expiry: the cumulative statistics stay true until the entity is active again (the
    online store would otherwise hide rows older than ttl counted from the wall clock).
    """
    user_stats = _view(
        USER_STATS,
        user,
        root,
        ttl,
        "Reward statistics per user, one row per active day stamped at the end of the day "
        "from events strictly before the stamp: cumulative and 7-day mean, spread and counts.",
    )
    title_stats = _view(
        ITEM_STATS,
        title,
        root,
        ttl,
        "Reward and popularity statistics per title, one row per watched day stamped at the end "
        "of the day: cumulative and 7-day mean reward, spread, counts, popularity trend.",
    )
    recent = _view(
        RECENT_HISTORY,
        user,
        root,
        ttl,
        "The user's last events (item ids and epoch seconds, oldest first): a latest snapshot "
        "for the reward model's online scoring path, not a point-in-time history.",
    )
    service = FeatureService(
        name=FEATURE_SERVICE,
        features=[user_stats, title_stats, recent],
        description="Everything the reward model reads: user and title reward statistics and "
        "the user's recent history.",
    )
    return [user, title, user_stats, title_stats, recent, service]
