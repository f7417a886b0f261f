"""Post-training baselines beside A-SFT, one small module each, sharing data and model code.

Every method module has a loss on plain tensors (hand-checkable) and a
`step(model, batch, ctx, update) -> dict[str, float]` that turns one `training_batch` into one or
more calls of `update(loss)` (the loop's backward + clip + optimizer step).
`training/posttrain/finetune.py` owns the loop; `methods/asft.py` is the method itself (and BC /
RW-BC are A-SFT with other
weights).

- bc: continued pretraining (sampled softmax, weight 1 per target).
- rwbc: the same with the logged 1-5 reward as the weight.
- dpo (and IPO): preference pairs from pi_ref samples whose ensemble intervals do not overlap.
- cql: discrete one-step CQL with the policy's catalogue logits as Q values.
- ppo: one-step bandit PPO, the reward model as environment, KL-regularised to pi_ref.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from training.core.data import PAD
from training.core.scoring import catalogue_logits
from training.models import SequenceEncoder
from training.reward.contract import CatalogueRewardModel

if TYPE_CHECKING:
    from training.posttrain.finetune import PosttrainConfig

Update = Callable[[torch.Tensor], None]


@dataclass
class StepContext:
    cfg: PosttrainConfig
    ref: SequenceEncoder  # the frozen pretrained policy, pi_ref
    n_items: int
    generator: torch.Generator  # negatives and action samples
    reward_model: CatalogueRewardModel | None = None
    event_weights: torch.Tensor | None = None  # [E] per-target weights (A-SFT, RW-BC)


def supervised(batch: dict[str, Any]) -> torch.Tensor:
    """[B, L] True at positions with a target (the states of the batch)."""
    return batch["target_ids"] != PAD


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
