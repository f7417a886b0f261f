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

from training.core.losses import sample_negatives, sampled_softmax_loss, seen_negatives
from training.models import SequenceEncoder
from training.posttrain.advantages import EventAdvantages
from training.posttrain.methods.base import StepContext, Update, supervised


def asft_weights(advantage: torch.Tensor, beta: float, weight_clip: float) -> torch.Tensor:
    """min(exp(A / beta), weight_clip), computed without overflow; beta = inf gives ones."""
    if not beta > 0:
        raise ValueError(f"beta must be > 0 (inf = behaviour cloning), got {beta}")
    if not weight_clip > 0:
        raise ValueError(f"weight_clip must be > 0, got {weight_clip}")
    return torch.exp(torch.clamp(advantage / beta, max=math.log(weight_clip)))


def event_weights(adv: EventAdvantages, beta: float, weight_clip: float) -> torch.Tensor:
    """[E] A-SFT weight of every event (NaN where the event has no advantage)."""
    return asft_weights(torch.from_numpy(np.asarray(adv.advantage, np.float64)), beta, weight_clip)


def sampled_nll(
    model: SequenceEncoder,
    batch: dict[str, Any],
    ctx: StepContext,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pretraining's sampled-softmax NLL of the batch's targets, optionally weighted per target
    (weights divided by their sum when cfg.self_normalise, else by the number of targets)."""
    cfg, mask = ctx.cfg, supervised(batch)
    h = model(batch["item_ids"], batch["timestamps"], batch["decision_ts"])
    targets = batch["target_ids"][mask]
    negs = sample_negatives(targets, ctx.n_items, cfg.num_negatives, generator=ctx.generator)
    drop = seen_negatives(batch["item_ids"], negs)[mask] if cfg.mask_seen_negatives else None
    return sampled_softmax_loss(
        h[mask], targets, model.item_embeddings(), negs, cfg.temperature, weights, drop,
        normalise="weights" if cfg.self_normalise else "count",
    )  # fmt: skip


def target_weights(batch: dict[str, Any], ctx: StepContext) -> torch.Tensor:
    """The batch's targets' entries of ctx.event_weights, checked finite."""
    if ctx.event_weights is None:
        raise ValueError(f"method {ctx.cfg.method!r} needs per-event weights")
    idx = torch.from_numpy(batch["target_index"])[supervised(batch)]
    w = ctx.event_weights[idx].to(torch.float32)
    if not torch.isfinite(w).all():
        raise ValueError(f"{int((~torch.isfinite(w)).sum())} training targets have no weight")
    return w


def step(model: SequenceEncoder, batch: dict[str, Any], ctx: StepContext, update: Update) -> dict:
    w = target_weights(batch, ctx)
    loss = sampled_nll(model, batch, ctx, w)
    update(loss)
    return {"loss": loss.item(), "mean_weight": w.mean().item()}
