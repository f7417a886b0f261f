"""Training batches with what rewards need, and the reward ensemble's scores of them: shared by
the advantages and the methods that query the reward model (DPO/IPO, PPO)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from training.core.data import SequenceData
from training.reward.contract import CatalogueRewardModel


def training_batch(data: SequenceData, rows: np.ndarray) -> dict[str, Any]:
    """`data.train_batch(rows)` plus what rewards need: the row's dense user id [B], the decision
    time of each position (= its target's timestamp, 0 at padding) [B, L] and the logged reward of
    each target [B, L] (NaN at padding and where the log has none)."""
    b = data.train_batch(rows)
    ev, tgt = data.events, b["target_index"]
    at = np.maximum(tgt, 0)
    b["user_ids"] = torch.from_numpy(ev.users[ev.row_of_event[data.windows.starts[rows]]])
    b["rewards"] = torch.from_numpy(np.where(tgt >= 0, ev.rewards[at], np.nan).astype(np.float32))
    return b


def score_rewards(reward_model: CatalogueRewardModel, batch: dict[str, Any]) -> torch.Tensor:
    """[K, B, L, n_items + 1] the ensemble's r_hat for a `training_batch`, shape-checked."""
    r = reward_model.score_catalogue(
        batch["item_ids"], batch["timestamps"], batch["user_ids"], batch["decision_ts"]
    )
    B, L = batch["item_ids"].shape
    want = (reward_model.n_members, B, L, reward_model.n_items + 1)
    if tuple(r.shape) != want:
        raise ValueError(f"score_catalogue returned shape {tuple(r.shape)}, expected {want}")
    return r


def ensemble_mean_std(r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (sample) std over the K members of [K, ...]; std = 0 for a single member.

    Written out because torch's std over a leading dim is ~5x slower on CPU for these shapes."""
    mean = r.mean(0)
    if r.shape[0] == 1:
        return mean, torch.zeros_like(mean)
    return mean, ((r - mean) ** 2).sum(0).div_(r.shape[0] - 1).sqrt_()
