"""A tiny deterministic `user_sequences` table for tests and smoke runs (no files, no network).

Each user walks the catalogue with a fixed step (item_{t+1} = item_t + step mod n_items), so the
next item is fully predictable from the last two: a model that learns anything learns this.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def toy_sequences(
    n_users: int = 32, n_items: int = 20, length: int = 12, seed: int = 0
) -> pa.Table:
    rng = np.random.default_rng(seed)
    start = rng.integers(0, n_items, n_users)
    step = rng.integers(1, 3, n_users)
    lengths = rng.integers(max(2, length // 2), length + 1, n_users)
    pos = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    items = (np.repeat(start, lengths) + pos * np.repeat(step, lengths)) % n_items
    ts = 1_600_000_000 + np.repeat(np.arange(n_users) * 10, lengths) + pos * 3600
    rewards = rng.integers(1, 6, len(items)).astype(np.float64)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    return pa.table(
        {
            "user_id": pa.array([f"u{u:03d}" for u in range(n_users)]),
            "item_ids": pa.ListArray.from_arrays(offsets, pa.array([f"i{i:03d}" for i in items])),
            "timestamps": pa.ListArray.from_arrays(offsets, pa.array(ts.astype(np.int64))),
            "rewards": pa.ListArray.from_arrays(offsets, pa.array(rewards)),
            "length": pa.array(lengths.astype(np.int64)),
        }
    )
