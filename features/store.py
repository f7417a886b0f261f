"""The FeatureStore of a data directory: config, `feast apply`, materialization to the online store.

Everything lives under `<data>/features/`: `feature_store.yaml` (written by `apply_repo`, so the
`feast` CLI works there too), `registry.db`, `online.db` (sqlite) and `offline/*.parquet`. Paths
are computed from the data directory, never fixed to one machine. The online store is sqlite by
default; `online_store_settings("redis", ...)` switches it to Redis by config.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from feast import FeatureStore, RepoConfig

from common.paths import layout

PROJECT = "asft"
CONFIG_FILE = "feature_store.yaml"
ONLINE_STORE_KINDS = ("sqlite", "redis")


def features_dir(root: Path | None = None) -> Path:
    path = layout(root).features
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline_dir(root: Path | None = None) -> Path:
    path = layout(root).features_offline
    path.mkdir(parents=True, exist_ok=True)
    return path


def registry_path(root: Path | None = None) -> Path:
    return features_dir(root) / "registry.db"


def online_db_path(root: Path | None = None) -> Path:
    return features_dir(root) / "online.db"


def online_store_settings(
    kind: str = "sqlite", root: Path | None = None, redis_connection_string: str = ""
) -> dict[str, Any]:
    """The `online_store` section: sqlite under the data directory, or a Redis server."""
    if kind == "sqlite":
        return {"type": "sqlite", "path": str(online_db_path(root))}
    if kind == "redis":
        if not redis_connection_string:
            raise ValueError(
                "online store 'redis' needs a connection string, e.g. 'localhost:6379'"
            )
        return {"type": "redis", "connection_string": redis_connection_string}
    raise ValueError(f"unknown online store kind {kind!r}; expected one of {ONLINE_STORE_KINDS}")


def store_config(
    root: Path | None = None, online_store: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The feature_store.yaml content: local provider, file (Parquet) offline store."""
    return {
        "project": PROJECT,
        "provider": "local",
        # cache_ttl_seconds 0 = the registry is read once per FeatureStore object and never
        # refreshed (no file read on the online path); build a new store after an apply.
        "registry": {
            "registry_type": "file",
            "path": str(registry_path(root)),
            "cache_ttl_seconds": 0,
        },
        "online_store": online_store or online_store_settings("sqlite", root),
        # The file offline store (Dask over Parquet): point-in-time correct. offline_store `duckdb`
        # fails on this stack (sqlglot/ibis, nanosecond Parquet timestamps).
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": 3,
    }


def write_store_config(
    root: Path | None = None, online_store: dict[str, Any] | None = None
) -> Path:
    path = features_dir(root) / CONFIG_FILE
    path.write_text(yaml.safe_dump(store_config(root, online_store), sort_keys=False))
    return path


def feature_store(root: Path | None = None) -> FeatureStore:
    """The store as last applied (its feature_store.yaml), or sqlite defaults before any apply."""
    folder = features_dir(root)
    path = folder / CONFIG_FILE
    if path.exists():
        config = yaml.safe_load(path.read_text())
    else:
        config = store_config(root)
    return FeatureStore(config=RepoConfig(repo_path=folder, **config))


def apply_repo(
    root: Path | None = None,
    ttl: timedelta = timedelta(0),
    online_store: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`feast apply`: write the config, register entities, views and the service; returns names."""
    from features.repo import repo_objects  # the objects need the offline paths of this root

    write_store_config(root, online_store)
    store = feature_store(root)
    objects = repo_objects(root, ttl=ttl)
    start = time.perf_counter()
    store.apply(objects)
    return {
        "entities": sorted(e.name for e in store.list_entities()),
        "feature_views": sorted(v.name for v in store.list_feature_views()),
        "feature_services": sorted(s.name for s in store.list_feature_services()),
        "apply_seconds": round(time.perf_counter() - start, 3),
        "registry": str(registry_path(root)),
    }


def materialize_latest(
    root: Path | None = None,
    end: datetime | None = None,
    store: FeatureStore | None = None,
    replace: bool = True,
) -> dict[str, Any]:
    """Load every view's latest row per entity up to `end` (default: the latest feature
    timestamp) into the online store; returns rows per view, seconds and the window.

    replace: empty the online tables first, so entities absent from the current offline files
    (another dataset's) do not linger; materialization alone only upserts."""
    from features.export import latest_timestamps, offline_row_counts

    store = store or feature_store(root)
    stamps = latest_timestamps(root)
    if not stamps:
        raise FileNotFoundError(
            f"no offline feature files under {offline_dir(root)}: run the feature_tables export"
        )
    first = min(lo for lo, _ in stamps.values())
    # Materialization's end bound is exclusive in places; one second past the latest row keeps it.
    end = end or max(hi for _, hi in stamps.values()) + timedelta(seconds=1)
    start = time.perf_counter()
    if replace:
        _recreate_online_tables(store)
    store.materialize(start_date=first - timedelta(seconds=1), end_date=end)
    seconds = time.perf_counter() - start
    return {
        "window": f"{first.isoformat()} .. {end.isoformat()}",
        "offline_rows_per_view": offline_row_counts(root),
        "entities_per_view": online_row_counts(root, store),
        "materialize_seconds": round(seconds, 3),
        "materialized_at": datetime.now(UTC).isoformat(),
    }


def _recreate_online_tables(store: FeatureStore) -> None:
    views = store.list_feature_views()
    entities = store.list_entities()
    provider = store._get_provider()  # the provider's infra update is what `feast apply` runs
    provider.update_infra(PROJECT, views, [], [], entities, partial=False)
    provider.update_infra(PROJECT, [], views, [], entities, partial=False)


def online_row_counts(root: Path | None, store: FeatureStore) -> dict[str, int]:
    """Entities held online per view (sqlite only; other stores report -1)."""
    import sqlite3
    from contextlib import closing

    from feast.infra.online_stores.helpers import compute_table_id

    config = store.config
    if config.online_store.type != "sqlite":
        return {v.name: -1 for v in store.list_feature_views()}
    with closing(sqlite3.connect(config.online_store.path)) as con:
        return {
            v.name: con.execute(
                f'select count(distinct entity_key) from "{compute_table_id(PROJECT, v)}"'
            ).fetchone()[0]
            for v in store.list_feature_views()
        }
