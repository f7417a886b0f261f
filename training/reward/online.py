"""Online reward scoring: for a user and candidate titles, read the user's and the titles' current
features and the user's recent history from the Feast online store, encode the history with the
frozen policy and return each candidate's reward estimate (ensemble mean) and spread (std).

    python -m training.reward.online --user u000042 --items i000001,i000002,i000003

The ensemble is loaded once per process (`OnlineScorer`); a call costs one online-store read and
one encoder pass over the recent history plus a K-member head pass over the candidates.
"""

from __future__ import annotations

import argparse
import functools
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from common.layout import DataLayout
from common.paths import data_dir
from training.core.data import PAD
from training.reward.model import RewardEnsemble, load_reward_ensemble


def _seconds(values: Any) -> np.ndarray:
    """Timestamps as float epoch seconds (datetimes, pandas Timestamps or numbers)."""
    out = []
    for v in values:
        if isinstance(v, datetime):
            out.append(pd.Timestamp(v).timestamp())
        elif isinstance(v, np.datetime64):
            out.append(pd.Timestamp(v).timestamp())
        else:
            out.append(float(v))
    return np.asarray(out, dtype=np.float64)


class OnlineScorer:
    """A loaded ensemble plus a Feast store handle, reused across calls."""

    def __init__(self, model: RewardEnsemble, store: Any = None, root: Path | None = None) -> None:
        self.model = model.eval()
        self.store, self.root = store, root
        self.max_len = model.encoder.cfg.max_len

    @classmethod
    def from_root(cls, root: Path | None = None, store: Any = None) -> OnlineScorer:
        """The trainer's ensemble and the Feast store of a data directory."""
        return cls(load_reward_ensemble(DataLayout(root or data_dir()).reward_model), store, root)

    def _store(self) -> Any:
        if self.store is None:
            from features.store import feature_store

            self.store = feature_store(self.root)
        return self.store

    def features(self, user_id: str, item_ids: list[str]) -> dict[str, Any]:
        from features.online import online_reward_features

        return online_reward_features(user_id, list(item_ids), store=self._store())

    @torch.no_grad()
    def score(self, user_id: str, item_ids: list[str]) -> pd.DataFrame:
        """item_id, r_hat_mean, r_hat_std (NaN for titles the policy's catalogue lacks)."""
        if not item_ids:
            raise ValueError("score needs at least one candidate item id")
        return self.score_features(user_id, item_ids, self.features(user_id, item_ids))

    @torch.no_grad()
    def score_features(
        self, user_id: str, item_ids: list[str], feats: dict[str, Any]
    ) -> pd.DataFrame:
        m = self.model
        tables = m.tables
        user = feats.get("user") or {}
        user_raw = np.array([_num(user.get(n)) for n in tables.user_names], np.float32)
        per_item = feats.get("items") or {}
        item_raw = np.array(
            [[_num((per_item.get(i) or {}).get(n)) for n in tables.item_names] for i in item_ids],
            np.float32,
        ).reshape(len(item_ids), len(tables.item_names))
        history = feats.get("history") or {}
        h = self._state(history.get("recent_item_ids") or [], history.get("recent_event_ts") or [])
        dense = torch.from_numpy(m.vocab.items.encode(_arrow(item_ids)).copy())
        r = m.score_with_features(h, user_raw, dense, item_raw).numpy()  # [K, C]
        known = dense.numpy() != PAD
        return pd.DataFrame(
            {
                "item_id": list(item_ids),
                "r_hat_mean": np.where(known, r.mean(0), np.nan),
                "r_hat_std": np.where(known, r.std(0), np.nan),
            }
        )

    def _state(self, recent_items: list[str], recent_ts: list[Any]) -> torch.Tensor:
        """The frozen policy's state after the user's recent history (oldest first); a user
        without known history gets the mean training state."""
        items = self.model.vocab.items.encode(_arrow(list(recent_items)))
        ts = _seconds(recent_ts)
        if len(ts) != len(items):
            raise ValueError("recent_item_ids and recent_event_ts differ in length")
        order = np.argsort(ts, kind="stable")
        items, ts = items[order], ts[order]
        keep = items != PAD
        items, ts = items[keep][-self.max_len :], ts[keep][-self.max_len :]
        if len(items) == 0:
            return self.model.h_mean.clone()
        h = self.model.encode(torch.from_numpy(items[None]), torch.from_numpy(ts[None]))
        return h[0, -1]


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _arrow(ids: list[str]) -> Any:
    import pyarrow as pa

    return pa.array([str(i) for i in ids], pa.string())


@functools.lru_cache(maxsize=4)
def _cached_scorer(root: str) -> OnlineScorer:
    return OnlineScorer.from_root(Path(root))


def score_online(user_id: str, item_ids: list[str], root: Path | None = None) -> pd.DataFrame:
    """Reward estimates for `item_ids` as the user's next title: item_id, r_hat_mean, r_hat_std.

    The ensemble under `root` (default: the data directory) is loaded on the first call and
    kept; features and history come from the Feast online store at call time."""
    return _cached_scorer(str(root or data_dir())).score(user_id, item_ids)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--user", required=True, help="user id as in the raw logs")
    parser.add_argument("--items", required=True, help="comma-separated candidate title ids")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    items = [i.strip() for i in args.items.split(",") if i.strip()]
    table = score_online(args.user, items)
    with pd.option_context("display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
