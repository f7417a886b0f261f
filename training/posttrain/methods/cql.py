"""Discrete one-step CQL: the policy's catalogue logits are the Q values, pi = softmax(Q).

loss = mean_p [ 0.5 * (Q(s_p, a_p) - r_p)^2 + alpha * (logsumexp_a Q(s_p, a) - Q(s_p, a_p)) ]
with a_p the logged action and r_p its logged 1-5 reward (one step: no bootstrapped target).
Q = cos(h, e_a) / temperature lies in [-1/T, 1/T] (10 at T = 0.1), which covers 1-5. The
conservative term pushes Q down on every item and up on the logged one; alpha = cfg.beta.
Positions without a logged reward contribute the conservative term only.
"""

from __future__ import annotations

from typing import Any

import torch

from training.core.scoring import catalogue_logits
from training.models import SequenceEncoder
from training.posttrain.methods.base import StepContext, Update, supervised


def cql_loss(
    q: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, alpha: float
) -> torch.Tensor:
    """q [P, n_items + 1] (padding column -inf), actions [P], rewards [P] (NaN = none)."""
    q_a = q.gather(-1, actions[:, None])[:, 0]
    has = torch.isfinite(rewards)
    td = torch.where(has, 0.5 * (q_a - torch.nan_to_num(rewards)) ** 2, torch.zeros_like(q_a))
    conservative = torch.logsumexp(q, dim=-1) - q_a
    return td.sum() / has.sum().clamp_min(1) + alpha * conservative.mean()


def step(model: SequenceEncoder, batch: dict[str, Any], ctx: StepContext, update: Update) -> dict:
    mask = supervised(batch)
    h = model(batch["item_ids"], batch["timestamps"], batch["decision_ts"])[mask]
    q = catalogue_logits(h, model.item_embeddings(), ctx.cfg.temperature)
    loss = cql_loss(q, batch["target_ids"][mask], batch["rewards"][mask], ctx.cfg.beta)
    update(loss)
    return {"loss": loss.item()}
