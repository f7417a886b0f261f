"""Exp-RSFT: the next-item NLL weighted by the exponentiated *observed* logged reward
(arXiv 2603.10279, "Robust Post-Training for Generative Recommenders: Why Exponential
Reward-Weighted SFT Outperforms RLHF"). No reward model and no propensity scores are used.

w = min(exp((r - mean_r) / lambda), weight_clip) per logged target, where r is its 1-5 logged
reward and mean_r the mean logged reward over every training target of the data; the loss is
A-SFT's weighted sampled softmax with the same per-batch self-normalisation (so only the relative
weights matter) and its batch step is A-SFT's (`methods.REGISTRY`). lambda is the method's beta.

Why centre: self-normalisation cancels the constant factor exp(-mean_r / lambda), so without the
clip centring would change nothing; with it, exp(r / lambda) at a small lambda (r = 1 already gives
e^10 at lambda = 0.1) would push every weight into the clip and make the loss BC's. Centred, the
exponent stays in range and lambda is on the scale of A-SFT's beta on (zero-mean) advantages.
As lambda -> inf every w -> 1 and the loss is behaviour cloning's, exactly.
"""

from __future__ import annotations

import numpy as np
import torch

from training.core.data import SequenceData
from training.posttrain.config import PosttrainConfig
from training.posttrain.methods.asft import asft_weights
from training.posttrain.methods.base import train_targets


def exprsft_weights(
    rewards: np.ndarray | torch.Tensor, mean_reward: float, lam: float, weight_clip: float
) -> torch.Tensor:
    """[E] min(exp((r - mean_reward) / lam), weight_clip) (NaN where r is); lam = inf gives ones."""
    r = torch.as_tensor(rewards, dtype=torch.float64)
    return asft_weights(r - mean_reward, lam, weight_clip)


def mean_target_reward(data: SequenceData) -> float:
    """The mean logged reward over the training targets that have one (NaN if none has)."""
    r = data.events.rewards[train_targets(data)].astype(np.float64)
    r = r[np.isfinite(r)]
    return float(r.mean()) if len(r) else float("nan")


def event_weights(
    data: SequenceData, cfg: PosttrainConfig, advantage: np.ndarray | None
) -> torch.Tensor:
    """[E] Exp-RSFT weight of every event of `data` (NaN where it has no logged reward), centred
    by the training targets' mean logged reward (advantages unused)."""
    return exprsft_weights(data.events.rewards, mean_target_reward(data), cfg.beta, cfg.weight_clip)
