"""Serving: batch recommendations from the registry alias (else the pretrained policy), written
to Parquet and the warehouse, naming the model version used."""

import dagster as dg

from common.paths import data_dir
from orchestration.config import config_from
from orchestration.resources import DUCKDB_WRITER_POOL
from training.serving.batch import (
    TABLE,
    BatchSettings,
    served_model,
    write_batch_recommendations,
)

BatchRecommendationsConfig = config_from(BatchSettings, "BatchRecommendationsConfig")


@dg.asset(
    group_name="posttrain",
    kinds={"parquet", "duckdb", "mlflow"},
    deps=[dg.AssetKey("posttrained_policies")],
    pool=DUCKDB_WRITER_POOL,
    description=(
        f"The registered model's alias (models:/<model_name>@<alias>, default "
        f"asft-recommender@champion; else the pretrained policy's MLflow run): top-k for every "
        f"active user, seen titles excluded, with the model name and version: "
        f"<data>/recommendations/batch_recs.parquet and the warehouse table {TABLE}."
    ),
)
def batch_recommendations(config: BatchRecommendationsConfig) -> dg.MaterializeResult:
    path, table = write_batch_recommendations(data_dir(), config.settings())
    served = served_model(table)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.num_rows,
            "users": len(set(table["user_id"].to_pylist())),
            "model_name": served.name,
            "model_version": served.version,
            "model_uri": served.uri,
            "alias": served.alias or "none (pretrained policy)",
            "path": dg.MetadataValue.path(str(path)),
            "warehouse_table": TABLE,
        }
    )
