"""Serving: the champion's (else the pretrained policy's) batch recommendations, written to
Parquet and the warehouse."""

import dagster as dg

from common.paths import data_dir
from orchestration.config import config_from
from orchestration.resources import DUCKDB_WRITER_POOL
from training.serving.batch import TABLE, BatchSettings, write_batch_recommendations

BatchRecommendationsConfig = config_from(BatchSettings, "BatchRecommendationsConfig")


@dg.asset(
    group_name="posttrain",
    kinds={"parquet", "duckdb"},
    deps=[dg.AssetKey("posttrained_policies")],
    pool=DUCKDB_WRITER_POOL,
    description=(
        f"The champion's (else the pretrained policy's) top-k for every active user, seen items "
        f"excluded, with the model name and version: <data>/recommendations/batch_recs.parquet "
        f"and the warehouse table {TABLE}."
    ),
)
def batch_recommendations(config: BatchRecommendationsConfig) -> dg.MaterializeResult:
    path, table = write_batch_recommendations(data_dir(), config.settings())
    versions = sorted(set(table["model_version"].to_pylist()))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.num_rows,
            "users": len(set(table["user_id"].to_pylist())),
            "model_name": ",".join(sorted(set(table["model_name"].to_pylist()))) or "none",
            "model_version": ",".join(versions) or "none",
            "path": dg.MetadataValue.path(str(path)),
            "warehouse_table": TABLE,
        }
    )
