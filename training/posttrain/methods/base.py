"""The step contract every post-training method implements, and what the methods share.

A method's `step(model, batch, ctx, update) -> dict[str, float]` turns one `training_batch`
(training/posttrain/batch.py) into one or more calls of `update(loss)` (the loop's backward +
clip + optimizer step); training/posttrain/finetune.py owns the loop and methods/__init__.py the
registry. `sampled_nll` is pretraining's sampled-softmax loss, optionally weighted per target:
BC, A-SFT, RW-BC and Exp-RSFT differ only in those weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from training.core.data import PAD, SequenceData
from training.core.losses import (
    logits_dtype,
    negative_mask,
    sample_negatives,
    sampled_softmax_loss,
)
from training.core.scoring import catalogue_logits
from training.models import SequenceEncoder
from training.posttrain.config import PosttrainConfig
from training.reward.contract import CatalogueRewardModel

Update = Callable[[torch.Tensor], None]
Step = Callable[..., dict[str, float]]  # (model, batch, ctx, update) -> the step's figures


@dataclass
class StepContext:
    cfg: PosttrainConfig
    ref: SequenceEncoder  # the frozen pretrained policy, pi_ref
    n_items: int
    generator: torch.Generator  # negatives and action samples
    reward_model: CatalogueRewardModel | None = None
    event_weights: torch.Tensor | None = None  # [E] per-target weights (A-SFT, RW-BC, Exp-RSFT)


def supervised(batch: dict[str, Any]) -> torch.Tensor:
    """[B, L] True at positions with a target (the states of the batch)."""
    return batch["target_ids"] != PAD


def train_targets(data: SequenceData) -> np.ndarray:
    """Flat event indices of every training target (events [start + 1, end) of each window)."""
    lo, hi = data.windows.starts + 1, data.windows.ends
    n = hi - lo
    return np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + np.repeat(lo, n)


def subsample_states(
    batch: dict[str, Any], max_states: int, generator: torch.Generator
) -> dict[str, Any]:
    """The batch with all but a random `max_states` of its supervised positions turned into
    padding targets (a copy): caps the cost of the full-catalogue methods (DPO/IPO, CQL, PPO)."""
    mask = supervised(batch)
    n = int(mask.sum())
    if n <= max_states:
        return batch
    keep = torch.zeros(n, dtype=torch.bool)
    keep[torch.randperm(n, generator=generator)[:max_states]] = True
    drop = torch.zeros_like(mask)
    drop[mask] = ~keep
    out = dict(batch)
    out["target_ids"] = batch["target_ids"].masked_fill(drop, PAD)
    out["target_index"] = np.where(drop.numpy(), -1, batch["target_index"])
    return out


def state_log_probs(
    model: SequenceEncoder,
    batch: dict[str, Any],
    temperature: float,
    states: torch.Tensor | None = None,
) -> torch.Tensor:
    """[P, n_items + 1] log pi(a|s) over the whole catalogue for the P supervised positions, or
    only for `states` (indices among them): log_softmax of cos / temperature, the pretraining
    scoring; the padding column is -inf."""
    h = model(batch["item_ids"], batch["timestamps"], batch["decision_ts"])[supervised(batch)]
    if states is not None:
        h = h[states]
    return torch.log_softmax(catalogue_logits(h, model.item_embeddings(), temperature), dim=-1)


def sampled_nll(
    model: SequenceEncoder,
    batch: dict[str, Any],
    ctx: StepContext,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pretraining's sampled-softmax NLL of the batch's targets, with its negative masking
    (`seen_scope`) and logits precision (`logits_matmul`), optionally weighted per target
    (weights divided by their sum when cfg.self_normalise, else by the number of targets)."""
    cfg, mask = ctx.cfg, supervised(batch)
    h = model(batch["item_ids"], batch["timestamps"], batch["decision_ts"])
    targets = batch["target_ids"][mask]
    negs = sample_negatives(targets, ctx.n_items, cfg.num_negatives, generator=ctx.generator)
    drop = negative_mask(batch, negs, cfg)
    return sampled_softmax_loss(
        h[mask], targets, model.item_embeddings(), negs, cfg.temperature, weights,
        None if drop is None else drop[mask],
        normalise="weights" if cfg.self_normalise else "count", matmul_dtype=logits_dtype(cfg),
    )  # fmt: skip
