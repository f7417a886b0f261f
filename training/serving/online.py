"""One user's recommendations from the online store: what the recommend command prints.

The history is the user's `user_recent_history` row in the Feast online store (the newest
`recent_history_length` = 50 good events, as dbt built it): the store a live service reads, and
as long as the default policy's window (`max_len` 50), so the policy sees what batch scoring
sees. Only those titles are excluded (the online store holds no older history), so a user with
more events than that may be offered a title seen before the window; batch recommendations,
which read the whole sequence from the warehouse, exclude every title ever seen.

Each title comes with the trainer's reward ensemble's r_hat mean and spread (the K members'
std), read with the same Feast features: why it is recommended, and how sure the ensemble is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from common.layout import DataLayout
from training.reward.online import OnlineScorer
from training.serving.registry import ServedModel, load_policy, resolve_policy


class UnknownUser(LookupError):
    """The online store holds nothing for the user (no statistics, no history)."""


@dataclass
class UserRecommendations:
    user_id: str
    titles: pd.DataFrame  # rank, item_id, score, r_hat_mean, r_hat_std
    source: str  # "policy", or "popularity" where the history has no known title
    history_length: int  # titles in the online store's recent history
    ignored_item_ids: list[str]  # history titles the policy does not know
    request_ts: float
    served: ServedModel
    reward_model: bool  # False: no trainer ensemble under the data directory, r_hat is NaN


class OnlineRecommender:
    """The served policy, the Feast store and the reward ensemble, loaded once and reused."""

    def __init__(self, root: Path, model_name: str, alias: str = "champion") -> None:
        from features.store import feature_store  # Feast is slow to import: only when used

        self.served = resolve_policy(root, model_name, alias)
        self.model = load_policy(self.served)
        self.store = feature_store(root)
        ensemble = DataLayout(root).reward_model
        self.scorer = OnlineScorer.from_root(root, self.store) if ensemble.exists() else None

    def recommend(
        self, user_id: str, k: int = 10, request_ts: float | None = None
    ) -> UserRecommendations:
        """The top-k for `user_id` asked at `request_ts` (default: now), with r_hat."""
        from features.online import online_item_features, online_user_features

        features = online_user_features(self.store, user_id)
        history = features["history"]
        items = list(history.get("recent_item_ids") or [])
        times = [float(t) for t in history.get("recent_event_ts") or []]
        if not items and all(v is None for v in features["user"].values()):
            raise UnknownUser(f"user {user_id!r} is not in the online store")
        at = time.time() if request_ts is None else float(request_ts)
        frame = pd.DataFrame({"item_ids": [items], "timestamps": [times], "request_ts": [at]})
        out = self.model.predict(frame, params={"k": int(k)}).iloc[0]
        titles = pd.DataFrame(
            {
                "rank": range(1, len(out["item_ids"]) + 1),
                "item_id": list(out["item_ids"]),
                "score": [float(s) for s in out["scores"]],
            }
        )
        if self.scorer is not None and len(titles):
            ids = titles["item_id"].tolist()
            feats = features | {"items": online_item_features(self.store, ids)}
            r_hat = self.scorer.score_features(user_id, ids, feats)
            titles["r_hat_mean"], titles["r_hat_std"] = r_hat["r_hat_mean"], r_hat["r_hat_std"]
        else:
            titles["r_hat_mean"] = titles["r_hat_std"] = float("nan")
        return UserRecommendations(
            user_id=user_id,
            titles=titles,
            source=str(out["source"]),
            history_length=len(items),
            ignored_item_ids=list(out["ignored_item_ids"]),
            request_ts=at,
            served=self.served,
            reward_model=self.scorer is not None,
        )
