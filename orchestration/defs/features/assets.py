"""The Feast feature store as assets: the reward marts exported to Parquet (the offline store),
`feast apply` (the registry), and materialization of the latest rows into the online store.

Feast takes seconds to import, so the `features` modules that use it are imported inside the
asset bodies: loading the code location stays fast.
"""

from datetime import timedelta
from typing import Literal

import dagster as dg
from pydantic import Field

from common.layout import DataLayout
from common.paths import data_dir

# features.store.ONLINE_STORE_KINDS as config choices, written here because importing
# features.store imports Feast (tests/test_orchestration_config.py keeps the two equal).
OnlineStoreKind = Literal["sqlite", "redis"]

# The dbt marts the offline sources are exported from, keyed as dagster-dbt names them.
_FEATURE_MARTS = [
    dg.AssetKey(["marts", "user_reward_stats_daily"]),
    dg.AssetKey(["marts", "item_reward_stats_daily"]),
    dg.AssetKey(["marts", "user_recent_history"]),
]


class FeatureStoreConfig(dg.Config):
    """Feature-view TTL and the online store."""

    ttl_days: int = Field(
        default=0,
        description="feature-view TTL in days; 0 = rows never expire (the statistics are "
        "cumulative; Feast's online reads would hide rows older than the TTL by the wall clock)",
    )
    online_store: OnlineStoreKind = Field(default="sqlite", description="the Feast online store")
    redis_connection_string: str = Field(
        default="", description='e.g. "localhost:6379" when online_store is redis'
    )


@dg.asset(
    group_name="features",
    deps=_FEATURE_MARTS,
    kinds={"duckdb", "parquet"},
    description="The reward-statistics marts and the users' recent histories exported from the "
    "warehouse to Parquet (microsecond UTC timestamps) under <data>/features/offline/: the "
    "sources of Feast's file offline store.",
)
def feature_tables() -> dg.MaterializeResult:
    from features.export import export_feature_tables

    figures = export_feature_tables(data_dir())
    views = figures["views"]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(v["rows"] for v in views.values()),
            "rows_per_view": dg.MetadataValue.json({k: v["rows"] for k, v in views.items()}),
            "export_seconds": figures["export_seconds"],
            "path": dg.MetadataValue.path(str(DataLayout(data_dir()).features / "offline")),
        }
    )


@dg.asset(
    group_name="features",
    deps=[feature_tables],
    kinds={"feast"},
    description="`feast apply`: entities user and title, feature views user_reward_stats, "
    "title_reward_stats, user_recent_history and the FeatureService reward_model_features in "
    "the registry <data>/features/registry.db (config in <data>/features/feature_store.yaml).",
)
def feature_registry(config: FeatureStoreConfig) -> dg.MaterializeResult:
    from features.store import apply_repo, online_store_settings

    root = data_dir()
    online = online_store_settings(config.online_store, root, config.redis_connection_string)
    figures = apply_repo(root, ttl=timedelta(days=config.ttl_days), online_store=online)
    return dg.MaterializeResult(
        metadata={
            "entities": figures["entities"],
            "feature_views": figures["feature_views"],
            "feature_services": figures["feature_services"],
            "online_store": config.online_store,
            "apply_seconds": figures["apply_seconds"],
            "registry": dg.MetadataValue.path(figures["registry"]),
        }
    )


@dg.asset(
    group_name="features",
    deps=[feature_registry],
    kinds={"feast", "sqlite"},
    description="Every feature view's latest row per entity, up to the latest feature timestamp, "
    "materialized into the online store; metadata holds one sample online lookup of a real user.",
)
def online_features(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    from features.online import online_reward_features, sample_user
    from features.store import feature_store, materialize_latest

    root = data_dir()
    store = feature_store(root)
    figures = materialize_latest(root, store=store)
    user_id, item_ids = sample_user(root)
    sample = online_reward_features(user_id, item_ids, store=store)
    context.log.info(f"online lookup of {user_id}: {sample['user']}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(figures["entities_per_view"].values()),
            "entities_per_view": dg.MetadataValue.json(figures["entities_per_view"]),
            "offline_rows_per_view": dg.MetadataValue.json(figures["offline_rows_per_view"]),
            "materialize_seconds": figures["materialize_seconds"],
            "window": figures["window"],
            "sample_lookup": dg.MetadataValue.json({"user_id": user_id, **sample}),
        }
    )
