"""Batch recommendations: the champion policy's top-k for every active user, in the shape a
serving system loads (one row per user and rank), as Parquet and as a warehouse table.

Active users: at least one event in the last `active_days` days of the data. The state is the
user's whole history (the most recent `max_len` events feed the model); items the user already
saw are never recommended. Without a registered champion the pretrained policy serves, and the
rows say so (`model_name`, `model_version`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from common.layout import DataLayout
from common.settings import check_choices, setting
from common.warehouse import connect_read_only, training_inputs
from training.core.data import PAD, build_dataset
from training.core.device import DeviceName, check_device, resolve_device
from training.core.scoring import last_state_scores
from training.models.checkpoint import load_checkpoint

TABLE = "serving.batch_recommendations"
DAY = 86_400.0


@dataclass
class ServingModel:
    directory: Path
    name: str
    version: str


def serving_model(root: Path) -> ServingModel:
    """The registered champion if there is one, else the pretrained policy."""
    layout = DataLayout(root)
    champion = layout.champion
    if (champion / "best.pt").exists():
        card = json.loads((champion / "champion.json").read_text())
        return ServingModel(champion, card["model_name"], str(card["model_version"]))
    pretrained = layout.pretrained_policy
    if not (pretrained / "best.pt").exists():
        raise FileNotFoundError(f"neither a champion nor a pretrained policy under {root}/models")
    run = pretrained / "mlflow_run.json"
    version = json.loads(run.read_text())["run_id"] if run.exists() else "unregistered"
    return ServingModel(pretrained, "pretrained_policy", f"run:{version}")


@dataclass(frozen=True)
class BatchSettings:
    """Who gets recommendations and how many."""

    k: int = setting(10, "titles per user, seen titles excluded")
    active_days: float = setting(7.0, "users with an event in the last N days of the data")
    device: DeviceName = setting(
        "auto", "where the policy scores: auto = CUDA when a GPU is visible, else CPU"
    )

    def __post_init__(self) -> None:
        check_choices(self)
        check_device(self.device, "BatchSettings.device")
        if self.k < 1 or self.active_days <= 0:
            raise ValueError(
                f"k must be >= 1 and active_days > 0, got {self.k=}, {self.active_days=}"
            )


@torch.no_grad()
def batch_recommendations(
    root: Path, settings: BatchSettings = BatchSettings(), batch_size: int = 256
) -> pa.Table:
    """user_id, rank (1 = best), item_id, score, model_name, model_version, generated_at;
    scored on `settings.device` in float32 (bfloat16 would reorder close scores)."""
    k, active_days = settings.k, settings.active_days
    dev = resolve_device(settings.device, "BatchSettings.device")
    served = serving_model(root)
    policy, vocab, _ = load_checkpoint(served.directory / "best.pt")
    policy.to(dev)
    with connect_read_only(DataLayout(root).warehouse) as con:
        sequences, valid_start, test_start = training_inputs(con)
    data = build_dataset(
        sequences, max_len=policy.cfg.max_len, split="temporal",
        valid_start=valid_start, test_start=test_start, vocab=vocab,
    )  # fmt: skip
    ev = data.events
    starts, ends = ev.offsets[:-1], ev.offsets[1:]
    last_ts = np.where(ends > starts, ev.timestamps[np.maximum(ends - 1, 0)], -np.inf)
    as_of = float(np.nanmax(ev.timestamps))  # the newest event: when these recs are asked for
    active = np.flatnonzero((ends > starts) & (last_ts >= as_of - active_days * DAY))
    users = np.asarray(sequences.column("user_id").to_pylist(), dtype=object)
    item_ids = np.asarray([""] + vocab.items.ids, dtype=object)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for lo in range(0, len(active), batch_size):
        rows = active[lo : lo + batch_size]
        s, e = starts[rows], ends[rows]
        width = int(np.minimum(e - s, data.max_len).max())
        idx = e[:, None] - width + np.arange(width)[None, :]
        idx = np.where(idx >= s[:, None], idx, -1)  # right-aligned, -1 = padding
        hist = torch.from_numpy(np.where(idx >= 0, ev.items[np.maximum(idx, 0)], PAD))
        ts = torch.from_numpy(np.where(idx >= 0, ev.timestamps[np.maximum(idx, 0)], 0.0))
        # Decision times: the next event's, and for the newest position the request's (as_of).
        nxt = np.minimum(idx + 1, len(ev.timestamps) - 1)
        decided = np.where((idx >= 0) & (idx + 1 < e[:, None]), ev.timestamps[nxt], 0.0)
        decided[:, -1] = as_of
        sc = last_state_scores(policy, hist.to(dev), ts.to(dev), torch.from_numpy(decided).to(dev))
        sc[:, PAD] = float("-inf")
        # Every item the user ever saw is excluded, not only those in the model's window.
        flat = np.concatenate([np.arange(a, b) for a, b in zip(s, e, strict=True)])
        seen_rows = torch.from_numpy(np.repeat(np.arange(len(rows)), e - s))
        sc[seen_rows.to(dev), torch.from_numpy(ev.items[flat]).to(dev)] = float("-inf")
        val, top = (t.cpu() for t in sc.topk(min(k, sc.shape[1]), dim=1))
        ok = torch.isfinite(val).numpy()
        rank = np.broadcast_to(np.arange(1, top.shape[1] + 1), ok.shape)
        parts.append(
            (np.repeat(users[rows], ok.sum(axis=1)), rank[ok], top.numpy()[ok], val.numpy()[ok])
        )
    if parts:
        user_col, rank_col, item_col, score_col = (
            np.concatenate(c) for c in zip(*parts, strict=True)
        )
    else:
        user_col, rank_col, item_col, score_col = (
            np.array([], dtype=t) for t in (object, int, int, float)
        )
    n = len(user_col)
    return pa.table(
        {
            "user_id": pa.array(user_col.tolist(), pa.string()),
            "rank": pa.array(rank_col.astype(np.int32)),
            "item_id": pa.array(item_ids[item_col].tolist(), pa.string()),
            "score": pa.array(score_col.astype(np.float64)),
            "model_name": pa.array([served.name] * n, pa.string()),
            "model_version": pa.array([served.version] * n, pa.string()),
            "generated_at": pa.array([datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC")),
        }
    )


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
