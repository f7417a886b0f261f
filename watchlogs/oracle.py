"""The simulator's ground truth s(u, i): stored apart from the logs and read by evaluation only.

s(u, i) = 1 + 4 * sigmoid(user_factors[u] . item_factors[i] + user_bias[u] + item_bias[i]),
a 1-5 scale like the ratings. Slate values are normalised between a uniformly random slate (0)
and the oracle's best slate (1), per user, then averaged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ARRAYS_FILE = "oracle.npz"
META_FILE = "oracle.json"
FORMULA = "s(u,i) = 1 + 4*sigmoid(user_factors[u].item_factors[i] + user_bias[u] + item_bias[i])"
# Users per batch when a [users, items] block is materialised: about 256 MB of float64.
_BATCH_CELLS = 1 << 25


def satisfaction_from_logit(logit: np.ndarray) -> np.ndarray:
    """Map the latent utility to the 1-5 satisfaction scale (shared by simulator and oracle)."""
    return 1.0 + 4.0 / (1.0 + np.exp(-logit))


@dataclass(frozen=True, eq=False)
class Oracle:
    user_ids: np.ndarray
    item_ids: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n_users, n_items = len(self.user_ids), len(self.item_ids)
        if self.user_factors.shape[0] != n_users or self.user_bias.shape != (n_users,):
            raise ValueError("user factors/bias do not match user_ids")
        if self.item_factors.shape[0] != n_items or self.item_bias.shape != (n_items,):
            raise ValueError("item factors/bias do not match item_ids")
        # Hash indexes turn string ids into rows without Python loops over events.
        object.__setattr__(self, "_user_index", pd.Index(self.user_ids))
        object.__setattr__(self, "_item_index", pd.Index(self.item_ids))

    # ---- persistence -------------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(
            directory / ARRAYS_FILE,
            user_ids=np.asarray(self.user_ids, dtype=str),
            item_ids=np.asarray(self.item_ids, dtype=str),
            user_factors=self.user_factors,
            item_factors=self.item_factors,
            user_bias=self.user_bias,
            item_bias=self.item_bias,
        )
        meta = {
            "formula": FORMULA,
            "n_users": len(self.user_ids),
            "n_items": len(self.item_ids),
            "config": self.config,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return directory

    @classmethod
    def load(cls, directory: Path) -> Oracle:
        directory = Path(directory)
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as arrays:
            parts = {name: arrays[name] for name in arrays.files}
        meta = json.loads((directory / META_FILE).read_text())
        return cls(config=meta.get("config", {}), **parts)

    # ---- lookups -----------------------------------------------------------------------------
    def user_rows(self, user_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        return _rows(self._user_index, user_ids, "user")  # type: ignore[attr-defined]

    def item_rows(self, item_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        return _rows(self._item_index, item_ids, "item")  # type: ignore[attr-defined]

    def satisfaction(
        self, user_ids: Sequence[str] | np.ndarray, item_ids: Sequence[str] | np.ndarray
    ) -> np.ndarray:
        """Elementwise s(user_ids[n], item_ids[n])."""
        users, items = self.user_rows(user_ids), self.item_rows(item_ids)
        if users.shape != items.shape:
            raise ValueError("user_ids and item_ids must have the same length")
        out = np.empty(len(users), dtype=np.float64)
        step = max(1, _BATCH_CELLS // max(1, self.user_factors.shape[1]))
        for lo in range(0, len(users), step):  # batches bound the gathered factor memory
            u, i = users[lo : lo + step], items[lo : lo + step]
            # float64 like _matrix, so elementwise and slate values agree to the last digit
            logit = np.einsum(
                "nd,nd->n",
                self.user_factors[u].astype(np.float64),
                self.item_factors[i].astype(np.float64),
            )
            out[lo : lo + step] = satisfaction_from_logit(
                logit + self.user_bias[u] + self.item_bias[i]
            )
        return out

    def satisfaction_matrix(self, user_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """s for every (user, item): [len(user_ids), n_items], columns in `item_ids` order."""
        return self._matrix(self.user_rows(user_ids))

    def _matrix(self, rows: np.ndarray) -> np.ndarray:
        logit = self.user_factors[rows].astype(np.float64) @ self.item_factors.T.astype(np.float64)
        logit += self.user_bias[rows, None]
        logit += self.item_bias[None, :]
        return satisfaction_from_logit(logit)

    # ---- slate values ------------------------------------------------------------------------
    def best_slate_value(
        self,
        user_ids: Sequence[str] | np.ndarray,
        k: int,
        exclude: Mapping[str, set[str]] | None = None,
    ) -> np.ndarray:
        """Per user, the mean s of the k best non-excluded titles (nan if none is left)."""
        _check_k(k)
        return self._per_user(user_ids, exclude, lambda m: _top_k_mean(m, k))

    def random_slate_value(
        self,
        user_ids: Sequence[str] | np.ndarray,
        k: int,
        exclude: Mapping[str, set[str]] | None = None,
    ) -> np.ndarray:
        """Per user, the expected mean s of a uniformly random k-slate of non-excluded titles.

        Sampling without replacement leaves the expectation at the mean over eligible titles,
        so k only has to be valid.
        """
        _check_k(k)
        return self._per_user(user_ids, exclude, _finite_mean)

    def normalised_slate_values(
        self,
        user_ids: Sequence[str] | np.ndarray,
        slates: Sequence[Sequence[str]],
        k: int,
        exclude: Mapping[str, set[str]] | None = None,
    ) -> np.ndarray:
        """Per user, (mean s of the slate's first k - random) / (best - random), or nan."""
        _check_k(k)
        if len(slates) != len(user_ids):
            raise ValueError(f"{len(slates)} slates for {len(user_ids)} users")
        trimmed = [list(s)[:k] for s in slates]
        lengths = np.fromiter((len(s) for s in trimmed), dtype=np.int64, count=len(trimmed))
        user_rep = np.repeat(np.asarray(user_ids, dtype=object), lengths)
        flat_items = np.fromiter(chain.from_iterable(trimmed), dtype=object, count=lengths.sum())
        s = self.satisfaction(user_rep, flat_items)
        owner = np.repeat(np.arange(len(trimmed)), lengths)
        sums = np.bincount(owner, weights=s, minlength=len(trimmed))
        with np.errstate(invalid="ignore", divide="ignore"):
            value = sums / lengths
            best = self.best_slate_value(user_ids, k, exclude)
            rand = self.random_slate_value(user_ids, k, exclude)
            span = best - rand
            return np.where(span > 1e-12, (value - rand) / np.where(span > 0, span, 1.0), np.nan)

    def normalised_slate_value(
        self,
        user_ids: Sequence[str] | np.ndarray,
        slates: Sequence[Sequence[str]],
        k: int,
        exclude: Mapping[str, set[str]] | None = None,
    ) -> float:
        """The mean over users of `normalised_slate_values` (undefined users skipped)."""
        values = self.normalised_slate_values(user_ids, slates, k, exclude)
        return float(_finite_mean(values[None, :])[0])

    def _per_user(self, user_ids, exclude, reduce) -> np.ndarray:
        rows = self.user_rows(user_ids)
        out = np.empty(len(rows), dtype=np.float64)
        step = max(1, _BATCH_CELLS // max(1, len(self.item_ids)))
        ids = np.asarray(user_ids, dtype=object)
        for lo in range(0, len(rows), step):  # batches of users, never the whole matrix
            block = self._matrix(rows[lo : lo + step])
            if exclude:
                r, c = self._excluded_cells(ids[lo : lo + step], exclude)
                block[r, c] = -np.inf
            out[lo : lo + step] = reduce(block)
        return out

    def _excluded_cells(
        self, ids: np.ndarray, exclude: Mapping[str, set[str]]
    ) -> tuple[np.ndarray, np.ndarray]:
        sets = [exclude.get(u, ()) for u in ids]
        lengths = np.fromiter((len(s) for s in sets), dtype=np.int64, count=len(sets))
        items = np.fromiter(chain.from_iterable(sets), dtype=object, count=lengths.sum())
        cols = self._item_index.get_indexer(items)  # type: ignore[attr-defined]
        rows = np.repeat(np.arange(len(sets)), lengths)
        known = cols >= 0  # items the oracle never heard of cannot be recommended anyway
        return rows[known], cols[known]


def _rows(index: pd.Index, ids: Sequence[str] | np.ndarray, kind: str) -> np.ndarray:
    rows = index.get_indexer(np.asarray(ids, dtype=object))
    if (rows < 0).any():
        unknown = np.asarray(ids, dtype=object)[rows < 0][:5]
        raise KeyError(f"unknown {kind} id(s): {', '.join(map(str, unknown))}")
    return rows


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"slate size k must be >= 1, got {k}")


def _finite_mean(block: np.ndarray) -> np.ndarray:
    """Row means over finite cells (excluded titles are -inf); nan where a row has none."""
    finite = np.isfinite(block)
    count = finite.sum(axis=1)
    total = np.where(finite, block, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _top_k_mean(block: np.ndarray, k: int) -> np.ndarray:
    k = min(k, block.shape[1])
    return _finite_mean(-np.partition(-block, k - 1, axis=1)[:, :k])
