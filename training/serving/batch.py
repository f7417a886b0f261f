"""Batch recommendations: the served policy's top-k for every active user, in the shape a
serving system loads (one row per user and rank), as Parquet and as a warehouse table.

The policy is the registered model's alias (`models:/<model_name>@<alias>`, resolved to a fixed
version), else the pretrained policy's logged model; the rows name the one used (`model_name`,
`model_version`). It is called through its MLflow interface (`mlflow_model.py`), the same one
`mlflow models serve` answers. Active users: at least one event in the last `active_days` days of
the data; recommendations are asked for at the newest event's time. The history is the user's
whole sequence (the newest `max_len` events feed the model); every title in it is excluded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from common.layout import DataLayout
from common.settings import setting
from common.warehouse import connect_read_only, training_inputs
from training.serving.registry import ServedModel, load_policy, resolve_policy

TABLE = "serving.batch_recommendations"
DAY = 86_400.0
SERVED_KEY = "served_model"


@dataclass(frozen=True)
class BatchSettings:
    """Who gets recommendations, how many, and from which registered model."""

    k: int = setting(10, "titles per user, seen titles excluded")
    active_days: float = setting(7.0, "users with an event in the last N days of the data")
    # The same default as PosttrainSettings.registered_model_name (a test keeps them equal).
    model_name: str = setting("asft-recommender", "MLflow registered model to serve")
    alias: str = setting(
        "champion", "registry alias served; without it, the pretrained policy serves"
    )
    batch_size: int = setting(512, "users per call of the model")

    def __post_init__(self) -> None:
        if self.k < 1 or self.active_days <= 0 or self.batch_size < 1:
            raise ValueError(
                f"k and batch_size must be >= 1 and active_days > 0, got {self.k=}, "
                f"{self.active_days=}, {self.batch_size=}"
            )


def active_requests(root: Path, active_days: float) -> tuple[list[str], pd.DataFrame]:
    """The active users and their model input (whole history, asked at the newest event)."""
    with connect_read_only(DataLayout(root).warehouse) as con:
        sequences, _, _ = training_inputs(con)
    if sequences.num_rows == 0:
        return [], pd.DataFrame(columns=["item_ids", "timestamps", "request_ts"])
    times = sequences["timestamps"].combine_chunks()
    ends = times.offsets.to_numpy()[1:]
    values = times.flatten().to_numpy(zero_copy_only=False).astype(np.float64)
    # Every user in user_sequences has at least one event (dbt tests it).
    last_ts = values[ends - 1]
    as_of = float(last_ts.max())  # the newest event: when these recommendations are asked for
    active = np.flatnonzero(last_ts >= as_of - active_days * DAY)
    chosen = sequences.take(pa.array(active))
    frame = pd.DataFrame(
        {
            "item_ids": chosen["item_ids"].to_pylist(),
            "timestamps": [[float(t) for t in ts] for ts in chosen["timestamps"].to_pylist()],
            "request_ts": np.full(len(active), as_of),
        }
    )
    return chosen["user_id"].to_pylist(), frame


def batch_recommendations(root: Path, settings: BatchSettings = BatchSettings()) -> pa.Table:
    """user_id, rank (1 = best), item_id, score, model_name, model_version, generated_at; the
    schema's metadata names the model too (`served_model`), so an empty table still says."""
    served = resolve_policy(root, settings.model_name, settings.alias)
    model = load_policy(served)
    users, frame = active_requests(root, settings.active_days)
    user_col: list[str] = []
    rank_col: list[int] = []
    item_col: list[str] = []
    score_col: list[float] = []
    for lo in range(0, len(frame), settings.batch_size):
        chunk = frame.iloc[lo : lo + settings.batch_size].reset_index(drop=True)
        out = model.predict(chunk, params={"k": settings.k})
        for user, items, scores in zip(
            users[lo : lo + settings.batch_size], out["item_ids"], out["scores"], strict=True
        ):
            user_col += [user] * len(items)
            rank_col += range(1, len(items) + 1)
            item_col += list(items)
            score_col += [float(s) for s in scores]
    n = len(user_col)
    table = pa.table(
        {
            "user_id": pa.array(user_col, pa.string()),
            "rank": pa.array(rank_col, pa.int32()),
            "item_id": pa.array(item_col, pa.string()),
            "score": pa.array(score_col, pa.float64()),
            "model_name": pa.array([served.name] * n, pa.string()),
            "model_version": pa.array([served.version] * n, pa.string()),
            "generated_at": pa.array([datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC")),
        }
    )
    return table.replace_schema_metadata({SERVED_KEY: json.dumps(asdict(served))})


def served_model(table: pa.Table) -> ServedModel:
    """The model a batch table was made with (its schema metadata)."""
    return ServedModel(**json.loads((table.schema.metadata or {})[SERVED_KEY.encode()]))


def write_batch_recommendations(
    root: Path, settings: BatchSettings = BatchSettings()
) -> tuple[Path, pa.Table]:
    """Write the Parquet file and replace `serving.batch_recommendations` in the warehouse.

    The warehouse is opened read-write here only, after the Parquet file is written; callers
    serialise this with the other DuckDB writers (the asset's pool)."""
    table = batch_recommendations(root, settings)
    path = DataLayout(root).batch_recommendations
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    with duckdb.connect(str(DataLayout(root).warehouse)) as con:
        con.execute("create schema if not exists serving")
        con.register("batch_recs_arrow", table)
        con.execute(f"create or replace table {TABLE} as select * from batch_recs_arrow")
        con.unregister("batch_recs_arrow")
    return path, table
