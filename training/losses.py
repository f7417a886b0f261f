"""Sampled softmax over L2-normalised embeddings (as in the HSTU repo), with per-position weights.

loss = -sum_p w_p * log softmax(s_p+, s_p-1..K)[+] / P, where s = cos(h, e) / temperature and
P = number of supervised (non-padding) positions passed in. Normalising by P rather than by
sum(w) keeps weights of one equal to plain behaviour cloning (the mean NLL) and lets A-SFT's
exp(A / beta) weights change the size of the step, not only its direction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.data import PAD


def sample_negatives(
    positive_ids: torch.Tensor,
    n_items: int,
    num_uniform: int,
    num_in_batch: int = 0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """[K] negative item ids shared by every position of a batch: uniform over the catalogue,
    plus up to `num_in_batch` distinct targets of the batch (popular items, harder negatives)."""
    negs = [torch.randint(1, n_items + 1, (num_uniform,), generator=generator)]
    if num_in_batch > 0:
        pool = positive_ids.unique()
        negs.append(pool[torch.randperm(len(pool), generator=generator)[:num_in_batch]])
    return torch.cat(negs)


def seen_negatives(item_ids: torch.Tensor, negative_ids: torch.Tensor) -> torch.Tensor:
    """[B, L, K]: True where negative k occurs in row b's inputs at or before position l.

    Evaluation excludes items the user already saw, so the model need not spend capacity
    pushing them down: masking them as negatives aligns training with that protocol.
    """
    # Via each item's first position in the row (a [B, n] scatter) rather than a cumsum over
    # [B, L, K]: the same mask at a fraction of the cost.
    B, L = item_ids.shape
    n = int(max(int(item_ids.max()), int(negative_ids.max()))) + 1
    pos = torch.arange(L).expand(B, L)
    first = torch.full((B, n), L, dtype=torch.long).scatter_reduce_(1, item_ids, pos, "amin")
    return pos[:, :, None] >= first[:, negative_ids][:, None, :]


def sampled_softmax_loss(
    query: torch.Tensor,
    positive_ids: torch.Tensor,
    item_embeddings: torch.Tensor,
    negative_ids: torch.Tensor,
    temperature: float = 0.05,
    supervision_weights: torch.Tensor | None = None,
    negative_mask: torch.Tensor | None = None,
    normalise: str = "count",
) -> torch.Tensor:
    """query [P, d] hidden states at supervised positions, positive_ids [P], negative_ids [K].

    Negatives equal to a position's own target (accidental hits) are masked out of its softmax,
    and so is every (position, negative) pair where `negative_mask` [P, K] is True. With weights,
    `normalise="count"` divides by P and `"weights"` by sum(w) (self-normalised, as A-SFT's
    per-batch option: only the direction of the step changes, not its size).
    """
    if normalise not in ("count", "weights"):
        raise ValueError(f"normalise must be 'count' or 'weights', got {normalise!r}")
    # 1/temperature folded into the [P, d] queries: one division instead of one per [P, K] logit.
    q = F.normalize(query, dim=-1, eps=1e-6) / temperature
    pos = F.normalize(item_embeddings[positive_ids], dim=-1, eps=1e-6)
    neg = F.normalize(item_embeddings[negative_ids], dim=-1, eps=1e-6)
    pos_logit = (q * pos).sum(-1, keepdim=True)
    neg_logit = q @ neg.T
    hit = (negative_ids[None, :] == positive_ids[:, None]) | (negative_ids[None, :] == PAD)
    if negative_mask is not None:
        hit = hit | negative_mask
    neg_logit = neg_logit.masked_fill(hit, float("-inf"))
    logp = pos_logit[:, 0] - torch.logsumexp(torch.cat([pos_logit, neg_logit], dim=1), dim=1)
    if supervision_weights is None:
        return -logp.mean()
    if normalise == "weights":
        return -(supervision_weights * logp).sum() / supervision_weights.sum().clamp_min(1e-12)
    return -(supervision_weights * logp).sum() / logp.numel()
