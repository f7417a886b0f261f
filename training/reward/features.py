"""Point-in-time reward features: the Feast statistics of every (user, day) and (title, day) as
dense per-day tables, and their normalisation into model inputs.

The features are time-varying, so the reward model carries the dense tables (`FeatureTables`,
retrieved point-in-time once for every (entity, day) by `fetch_feature_tables`) and never needs
Feast or a later row to score.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from training.core.data import Vocab

DAY_SECONDS = 86_400.0


def normalise_features(raw: np.ndarray, names: list[str]) -> np.ndarray:
    """Raw feature values [..., F] -> model inputs [..., 2F]: transformed values, then one missing
    indicator per feature (NaN -> 0 + indicator 1).

    Counts are log1p-ed (heavy-tailed), reward means centred on the 1-5 scale's middle, trends
    log-ed; the transforms are fixed by name so online scoring normalises exactly like training.
    """
    raw = np.asarray(raw, dtype=np.float32)
    if raw.shape[-1] != len(names):
        raise ValueError(f"feature arrays have {raw.shape[-1]} columns for {len(names)} names")
    out = np.empty(raw.shape[:-1] + (2 * len(names),), dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        for j, name in enumerate(names):
            x = raw[..., j]
            if "reward_mean" in name:
                v = x - 3.0
            elif "reward_std" in name:
                v = x
            elif "trend" in name:
                v = np.log(np.maximum(x, 1e-3))
            else:  # counts and popularity
                v = np.log1p(np.maximum(x, 0.0))
            missing = ~np.isfinite(v)
            out[..., j] = np.where(missing, 0.0, v)
            out[..., len(names) + j] = missing
    return out


def day_stamps(first_ts: float, last_ts: float) -> np.ndarray:
    """UTC midnights from the first event's day to the end of the last event's day (inclusive)."""
    lo = math.floor(first_ts / DAY_SECONDS) * DAY_SECONDS
    hi = math.floor(last_ts / DAY_SECONDS) * DAY_SECONDS + DAY_SECONDS
    return np.arange(lo, hi + 1.0, DAY_SECONDS, dtype=np.float64)


@dataclass
class FeatureTables:
    """Point-in-time features for every entity and day, dense.

    `user[d + 1]` / `item[d + 1]` hold every entity's raw features as of `stamps[d]` (what a feature
    store returns for a lookup at that instant); row 0 is "before the first stamp": all missing.
    Entity rows follow the policy's dense ids (row 0 = padding/unknown: all missing).
    """

    stamps: np.ndarray  # [D] float64 epoch seconds, strictly increasing
    user: np.ndarray  # [D + 1, n_users + 1, F_user] float32, NaN = no value
    item: np.ndarray  # [D + 1, n_items + 1, F_item] float32
    user_names: list[str]
    item_names: list[str]

    def __post_init__(self) -> None:
        d = len(self.stamps)
        if self.user.shape[0] != d + 1 or self.item.shape[0] != d + 1:
            raise ValueError(f"feature tables need {d + 1} day rows (stamps + 'before the first')")
        if np.any(np.diff(self.stamps) <= 0):
            raise ValueError("stamps must be strictly increasing")
        if self.user.shape[2] != len(self.user_names) or self.item.shape[2] != len(self.item_names):
            raise ValueError("feature tables and feature names disagree")

    def day_index(self, ts: np.ndarray) -> np.ndarray:
        """Row of the last stamp <= ts (0 when ts precedes every stamp): never a later day."""
        return np.searchsorted(self.stamps, np.asarray(ts, dtype=np.float64), side="right")

    def user_feature(self, name: str, users: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Raw value of one user feature at each decision time (NaN where none)."""
        return self.user[self.day_index(ts), users, self.user_names.index(name)]

    def item_feature(self, name: str, items: np.ndarray, ts: np.ndarray) -> np.ndarray:
        return self.item[self.day_index(ts), items, self.item_names.index(name)]

    def save(self, path: Path) -> None:
        np.savez(
            path,
            stamps=self.stamps,
            user=self.user,
            item=self.item,
            user_names=np.asarray(self.user_names, dtype=str),
            item_names=np.asarray(self.item_names, dtype=str),
        )

    @classmethod
    def load(cls, path: Path) -> FeatureTables:
        with np.load(path, allow_pickle=False) as f:
            return cls(
                f["stamps"],
                f["user"],
                f["item"],
                f["user_names"].tolist(),
                f["item_names"].tolist(),
            )


def dense_from_rows(
    entities: np.ndarray, ts: np.ndarray, values: np.ndarray, stamps: np.ndarray, n_entities: int
) -> np.ndarray:
    """Feature rows (dense entity id, timestamp, values [R, F]) -> the dense per-day table
    [D + 1, n_entities + 1, F]: cell (d + 1, e) holds e's latest row stamped <= stamps[d] (a
    point-in-time "as of" lookup, Feast's rule without TTL); NaN where e has no row yet.
    Rows of unknown entities (id 0) are ignored."""
    if not (len(entities) == len(ts) == len(values)):
        raise ValueError("entities, ts and values must have the same number of rows")
    d = len(stamps)
    rank = np.empty(len(ts), dtype=np.int64)
    rank[np.argsort(ts, kind="stable")] = np.arange(len(ts))  # later row = higher rank
    first = np.searchsorted(stamps, ts, side="left") + 1  # first day row allowed to see it
    ok = (entities > 0) & (first <= d)
    latest = np.full((d + 1, n_entities + 1), -1, dtype=np.int64)
    np.maximum.at(latest, (first[ok], entities[ok]), rank[ok])
    latest = np.maximum.accumulate(latest, axis=0)  # carried forward to later days
    by_rank = np.empty_like(rank)
    by_rank[rank] = np.arange(len(ts))
    out = np.full((d + 1, n_entities + 1, values.shape[1]), np.nan, dtype=np.float32)
    has = latest >= 0
    out[has] = values[by_rank[latest[has]]]
    return out


def fetch_feature_tables(
    vocab: Vocab, stamps: np.ndarray, root: Path, check_rows: int = 1000, seed: int = 0
) -> tuple[FeatureTables, dict[str, Any]]:
    """Point-in-time features of every (user, day) and (title, day), from the Feast store.

    Feast's file offline store is far too slow to be asked for every (entity, day) of the data
    within the stage's budget, so the dense tables are built from the feature views' registered
    offline sources with the same rule ("latest row stamped <= t", no TTL) in numpy, then
    `check_rows` random (entity, day) cells of each table are asked of Feast's
    `get_historical_features` (features.retrieval) and must agree, or the stage stops.
    """
    from features.export import ITEM_STATS, USER_STATS
    from features.retrieval import (
        ITEM_FEATURES,
        USER_FEATURES,
        historical_item_features,
        historical_user_features,
    )
    from features.store import feature_store

    store = feature_store(root)
    rng = np.random.default_rng(seed)
    when = pd.to_datetime(stamps, unit="s", utc=True)
    info: dict[str, Any] = {}

    def table(view: str, key: str, idmap, names: list[str], fetch: Callable) -> np.ndarray:
        path = store.get_feature_view(view).batch_source.path
        rows = pq.read_table(path, columns=[key, "event_timestamp", *names])
        ts = rows.column("event_timestamp").cast(pa.timestamp("us", tz="UTC"))
        dense = dense_from_rows(
            idmap.encode(rows.column(key)),
            ts.cast(pa.int64()).to_numpy() / 1e6,
            np.column_stack([rows.column(n).to_numpy(zero_copy_only=False) for n in names])
            .astype(np.float32),
            stamps,
            len(idmap),
        )  # fmt: skip
        if check_rows:
            t0 = time.perf_counter()
            ent = rng.integers(1, len(idmap) + 1, check_rows)
            day = rng.integers(0, len(stamps), check_rows)
            asked = pd.DataFrame({key: idmap.decode(ent), "event_timestamp": when[day]})
            got = fetch(asked, root=root)[names].to_numpy(dtype=np.float32, na_value=np.nan)
            mine = dense[day + 1, ent]
            same = np.isclose(got, mine, rtol=1e-5, atol=1e-6, equal_nan=True)
            if not same.all():
                raise ValueError(
                    f"{view}: {int((~same.all(1)).sum())} of {check_rows} point-in-time cells "
                    "differ from Feast's get_historical_features"
                )
            info[f"{view}_feast_check"] = {
                "cells": check_rows,
                "agree": True,
                "seconds": round(time.perf_counter() - t0, 1),
            }
        return dense

    tables = FeatureTables(
        stamps,
        table(USER_STATS.view, "user_id", vocab.users, USER_FEATURES, historical_user_features),
        table(ITEM_STATS.view, "item_id", vocab.items, ITEM_FEATURES, historical_item_features),
        list(USER_FEATURES),
        list(ITEM_FEATURES),
    )
    return tables, info
