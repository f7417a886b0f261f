"""The one catalogue scorer: cosine similarity between a state and every item embedding.

Every stage scores items this way: pretraining's softmax (`core/losses.py`), ranking evaluation
(`core/evaluate.py`), post-training's log pi over the catalogue, advantages, the slate metrics
and serving. Two forms, kept apart because their float rounding differs and published figures
depend on it: `cosine_scores` (h . e, temperature applied afterwards if at all) and
`catalogue_logits` (1/temperature folded into the states before the product: one pass fewer
over the [.., n_items] result).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from training.core.data import PAD

if TYPE_CHECKING:
    from training.models import SequenceEncoder

EPS = 1e-6


def unit(x: torch.Tensor) -> torch.Tensor:
    """L2-normalised along the last axis (the embeddings' and states' scale is not a score)."""
    return F.normalize(x, dim=-1, eps=EPS)


def cosine_scores(hidden: torch.Tensor, item_embeddings: torch.Tensor) -> torch.Tensor:
    """[..., n_items + 1] cos(h, e_a) for every item, the padding column included."""
    return unit(hidden) @ unit(item_embeddings).T


def catalogue_logits(
    hidden: torch.Tensor, item_embeddings: torch.Tensor, temperature: float
) -> torch.Tensor:
    """[..., n_items + 1] cos(h, e_a) / temperature for every item; the padding column is -inf."""
    # 1/temperature folded into the [.., d] states, and the padding column set in place: each
    # full pass over [.., n_items] costs as much as the product itself.
    logits = (unit(hidden) / temperature) @ unit(item_embeddings).T
    logits[..., PAD] = float("-inf")
    return logits


@torch.no_grad()
def last_state_scores(
    policy: SequenceEncoder,
    item_ids: torch.Tensor,
    ts: torch.Tensor,
    decision_ts: torch.Tensor | None = None,
) -> torch.Tensor:
    """[B, n_items + 1] cosine scores of every item after each history (its last position);
    `decision_ts` [B, L] as in `SequenceEncoder.forward`."""
    return cosine_scores(policy(item_ids, ts, decision_ts)[:, -1], policy.item_embeddings())


def mask_seen(
    scores: torch.Tensor, seen_rows: torch.Tensor, seen_items: torch.Tensor
) -> torch.Tensor:
    """Padding and the items each row has seen set to -inf, in place."""
    scores[:, PAD] = float("-inf")
    scores[seen_rows, seen_items] = float("-inf")
    return scores
