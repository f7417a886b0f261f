"""Reward-weighted BC: the sampled-softmax NLL weighted by the raw logged reward (1-5).

w = min(reward, weight_clip), normalised like A-SFT's weights (self-normalised per batch by
default), so it differs from A-SFT only in the weight: no baseline V(s), no temperature. Its
batch step is A-SFT's (`methods.REGISTRY`).
"""

from __future__ import annotations

import numpy as np
import torch

from training.core.data import SequenceData
from training.posttrain.config import PosttrainConfig


def reward_weights(rewards: np.ndarray | torch.Tensor, weight_clip: float) -> torch.Tensor:
    """[E] min(reward, weight_clip); negative rewards are an error (weights must be >= 0)."""
    r = torch.as_tensor(rewards, dtype=torch.float64)
    if (r[torch.isfinite(r)] < 0).any():
        raise ValueError("reward-weighted BC needs non-negative rewards (the 1-5 scale)")
    return r.clamp(max=weight_clip)


def event_weights(
    data: SequenceData, cfg: PosttrainConfig, advantage: np.ndarray | None
) -> torch.Tensor:
    """[E] RW-BC weight of every event of `data`: its logged reward, clipped (advantages unused)."""
    return reward_weights(data.events.rewards, cfg.weight_clip)
