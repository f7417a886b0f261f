"""The contract between the reward model (issue 4) and post-training (issue 5).

A reward-model ensemble scores every catalogue item as the next event after each position of a
batch of right-aligned histories, so r_hat(s, a) for the logged action and
V(s) = E_{a~pi} r_hat(s, a) come from the same row, and the policy-weighted advantage of every
state sums to zero exactly.

Saved ensembles live at `reward_model_dir()` (the trainer's) and `reward_judge_dir()` (trained on
disjoint data; evaluation only); `training.reward.model.load_reward_ensemble(path)` returns one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch

from common.paths import data_dir


class CatalogueRewardModel(Protocol):
    n_members: int  # K ensemble members
    n_items: int  # catalogue size; item ids are the policy's dense ids 1..n_items (0 = padding)

    def score_catalogue(
        self,
        item_ids: torch.Tensor,  # [B, L] int64 history, right-aligned, 0 = padding
        timestamps: torch.Tensor,  # [B, L] float64 epoch seconds of the history events
        user_ids: torch.Tensor,  # [B] int64 dense user ids (the policy's vocab; 0 = unknown)
        decision_ts: torch.Tensor,  # [B, L] float64 epoch seconds of the decision after position t
    ) -> torch.Tensor:
        """[K, B, L, n_items + 1] predicted 1-5 reward of every item as the event after position t.

        Features are looked up point-in-time at `decision_ts` (never from later rows). Column 0
        (padding) is meaningless; positions whose input is padding are meaningless too.
        """
        ...


class CatalogueMeanRewardModel(CatalogueRewardModel, Protocol):
    """Optional: a model that can also give the members' mean without the [K, ...] tensor
    (advantages use it when present: the same V, several times cheaper)."""

    def score_catalogue_mean(
        self,
        item_ids: torch.Tensor,
        timestamps: torch.Tensor,
        user_ids: torch.Tensor,
        decision_ts: torch.Tensor,
    ) -> torch.Tensor:
        """[B, L, n_items + 1] = score_catalogue(...).mean(0)."""
        ...

    def score_items(
        self,
        item_ids: torch.Tensor,
        timestamps: torch.Tensor,
        user_ids: torch.Tensor,
        decision_ts: torch.Tensor,
        candidates: torch.Tensor,  # [B, L, C] dense item ids
    ) -> torch.Tensor:
        """[K, B, L, C] = score_catalogue(...) at the candidates."""
        ...


def reward_model_dir(root: Path | None = None) -> Path:
    return (root or data_dir()) / "models" / "reward_model"


def reward_judge_dir(root: Path | None = None) -> Path:
    return (root or data_dir()) / "models" / "reward_judge"


def advantages_path(root: Path | None = None) -> Path:
    """Parquet, one row per logged training event (columns: training/posttrain/advantages.py)."""
    return (root or data_dir()) / "advantages" / "advantages.parquet"
