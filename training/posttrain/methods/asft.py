"""A-SFT: advantage-weighted supervised fine-tuning, i.e. weighted continued pretraining.

loss = sum_p w_p * (-log pi(a_p|s_p)) / sum_p w_p   (self_normalise, the default)
     = sum_p w_p * (-log pi(a_p|s_p)) / P            (self_normalise=False)
with w = min(exp(A / beta), weight_clip) per logged target and log pi the sampled softmax of
pretraining (same negatives, temperature and seen-item masking), starting from the pretrained
policy. beta bounds the deviation from the logging policy: as beta -> inf every w -> 1 and the
loss is behaviour cloning's, exactly. Self-normalising per batch keeps the step size of BC and
changes only its direction; the clip stops a few large advantages from dominating a batch.
No propensity scores are used.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from training.core.data import SequenceData
from training.models import SequenceEncoder
from training.posttrain.config import PosttrainConfig
from training.posttrain.methods.base import StepContext, Update, sampled_nll, supervised


def asft_weights(advantage: torch.Tensor, beta: float, weight_clip: float) -> torch.Tensor:
    """min(exp(A / beta), weight_clip), computed without overflow; beta = inf gives ones."""
    if not beta > 0:
        raise ValueError(f"beta must be > 0 (inf = behaviour cloning), got {beta}")
    if not weight_clip > 0:
        raise ValueError(f"weight_clip must be > 0, got {weight_clip}")
    return torch.exp(torch.clamp(advantage / beta, max=math.log(weight_clip)))


def event_weights(
    data: SequenceData, cfg: PosttrainConfig, advantage: np.ndarray | None
) -> torch.Tensor:
    """[E] A-SFT weight of every event of `data` (NaN where the event has no advantage), from
    the [E] advantages (training/posttrain/advantages.py)."""
    if advantage is None:
        raise ValueError("method 'asft' needs advantages (training.posttrain.advantages)")
    if len(advantage) != len(data.events.items):
        raise ValueError(
            f"advantages cover {len(advantage)} events, the data has "
            f"{len(data.events.items)}: compute them on the same data"
        )
    return asft_weights(torch.from_numpy(np.asarray(advantage, np.float64)), cfg.beta,
                        cfg.weight_clip)  # fmt: skip


def target_weights(batch: dict[str, Any], ctx: StepContext) -> torch.Tensor:
    """The batch's targets' entries of ctx.event_weights, checked finite."""
    if ctx.event_weights is None:
        raise ValueError(f"method {ctx.cfg.method!r} needs per-event weights")
    at = torch.from_numpy(batch["target_index"]).to(ctx.event_weights.device)
    idx = at[supervised(batch)]
    w = ctx.event_weights[idx].to(torch.float32)
    if not torch.isfinite(w).all():
        raise ValueError(f"{int((~torch.isfinite(w)).sum())} training targets have no weight")
    return w


def step(model: SequenceEncoder, batch: dict[str, Any], ctx: StepContext, update: Update) -> dict:
    """One weighted NLL update; RW-BC's step too (only its per-event weights differ)."""
    w = target_weights(batch, ctx)
    loss = sampled_nll(model, batch, ctx, w)
    update(loss)
    return {"loss": loss.item(), "mean_weight": w.mean().item()}
