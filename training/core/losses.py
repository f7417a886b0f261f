"""Sampled softmax over L2-normalised embeddings (as in the HSTU repo), with per-position weights.

loss = -sum_p w_p * log softmax(s_p+, s_p-1..K)[+] / P, where s = cos(h, e) / temperature and
P = number of supervised (non-padding) positions passed in. Normalising by P rather than by
sum(w) keeps weights of one equal to plain behaviour cloning (the mean NLL) and lets A-SFT's
exp(A / beta) weights change the size of the step, not only its direction.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
import torch.nn.functional as F

from training.core.data import PAD
from training.core.scoring import unit

# `num_uniform` sentinel: every item of the catalogue is a negative (full softmax, i.e. cross-
# entropy over all items as in Klenitskiy & Vasilev 2023), no sampling; seen ones masked as usual.
ALL_ITEMS = -1


def sample_negatives(
    positive_ids: torch.Tensor,
    n_items: int,
    num_uniform: int,
    num_in_batch: int = 0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """[K] negative item ids shared by every position of a batch: uniform over the catalogue,
    plus up to `num_in_batch` distinct targets of the batch (popular items, harder negatives).

    `num_uniform=ALL_ITEMS` returns every item id 1..n_items once (in-batch negatives would only
    repeat some of them, so they are not added); the generator is then left untouched.
    """
    if num_uniform == ALL_ITEMS:
        return torch.arange(1, n_items + 1, device=positive_ids.device)
    if num_uniform < 0:
        raise ValueError(f"num_uniform must be >= 0 or ALL_ITEMS (-1), got {num_uniform}")
    # Drawn by the (CPU) generator, then moved: a seed gives the same negatives on every device.
    negs = [torch.randint(1, n_items + 1, (num_uniform,), generator=generator)]
    if num_in_batch > 0:
        pool = positive_ids.unique().cpu()
        negs.append(pool[torch.randperm(len(pool), generator=generator)[:num_in_batch]])
    return torch.cat(negs).to(positive_ids.device)


def seen_negatives(
    item_ids: torch.Tensor,
    negative_ids: torch.Tensor,
    prior: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """[B, L, K]: True where negative k occurs in row b's inputs at or before position l, or
    (with `prior` = (rows, items)) anywhere in row b's history before its window.

    Evaluation excludes items the user already saw, so the model need not spend capacity
    pushing them down: masking them as negatives aligns training with that protocol.
    """
    # Via each item's first position in the row (a [B, n] scatter) rather than a cumsum over
    # [B, L, K]: the same mask at a fraction of the cost.
    B, L = item_ids.shape
    n = int(max(int(item_ids.max()), int(negative_ids.max()))) + 1
    if prior is not None and prior[1].numel():
        n = max(n, int(prior[1].max()) + 1)
    pos = torch.arange(L, device=item_ids.device).expand(B, L)
    first = torch.full((B, n), L, dtype=torch.long, device=item_ids.device)
    first = first.scatter_reduce_(1, item_ids, pos, "amin")
    if prior is not None:
        first[prior[0], prior[1]] = 0
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
    matmul_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """query [P, d] hidden states at supervised positions, positive_ids [P], negative_ids [K].

    Negatives equal to a position's own target (accidental hits) are masked out of its softmax,
    and so is every (position, negative) pair where `negative_mask` [P, K] is True. With weights,
    `normalise="count"` divides by P and `"weights"` by sum(w) (self-normalised, as A-SFT's
    per-batch option: only the direction of the step changes, not its size).

    `matmul_dtype=torch.bfloat16` computes the full-softmax [P, n] logits' matmul (forward and
    backward) in bfloat16, everything else in float32: about 4x faster matmuls on CPUs with
    AVX512-BF16 or AMX, logits rounded to ~3 significant digits.
    """
    if normalise not in ("count", "weights"):
        raise ValueError(f"normalise must be 'count' or 'weights', got {normalise!r}")
    # 1/temperature folded into the [P, d] queries: one division instead of one per [P, K] logit.
    q = unit(query) / temperature
    if _is_whole_catalogue(negative_ids, item_embeddings):
        logp = _full_softmax_logp(q, positive_ids, item_embeddings, negative_mask, matmul_dtype)
    else:
        pos = unit(item_embeddings[positive_ids])
        neg = unit(item_embeddings[negative_ids])
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


def _is_whole_catalogue(negative_ids: torch.Tensor, item_embeddings: torch.Tensor) -> bool:
    """True when the negatives are exactly items 1..n in order (`ALL_ITEMS`)."""
    n = item_embeddings.shape[0] - 1
    return negative_ids.numel() == n and bool(
        (negative_ids == torch.arange(1, n + 1, device=negative_ids.device)).all()
    )


def _full_softmax_logp(
    q: torch.Tensor,
    positive_ids: torch.Tensor,
    item_embeddings: torch.Tensor,
    negative_mask: torch.Tensor | None,
    matmul_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """log softmax of the target over every item: the same value as the sampled path with all
    items as negatives (tested), from one [P, n] matrix and a fused cross-entropy instead of a
    separate positive column, a concatenation and a logsumexp (fewer [P, n] temporaries)."""
    items = unit(item_embeddings[1:])
    logits = (q.to(matmul_dtype) @ items.to(matmul_dtype).T).float()
    target = positive_ids - 1
    if negative_mask is not None:  # seen items out of the softmax, never the target itself
        drop = negative_mask.scatter(1, target[:, None], False)
        logits.masked_fill_(drop, float("-inf"))  # in place: mm's backward does not need it
    return -F.cross_entropy(logits, target, reduction="none")


class _LossSettings(Protocol):
    """What the loss options below read of a config (pretraining's TrainConfig and
    post-training's PosttrainConfig both carry them)."""

    logits_matmul: str
    mask_seen_negatives: bool
    seen_scope: str


def bf16_matmul_is_native() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 / AMX); emulated, it is slower
    than float32."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def logits_dtype(cfg: _LossSettings) -> torch.dtype:
    """`cfg.logits_matmul`, except that bfloat16 falls back to float32 where it is not native."""
    if cfg.logits_matmul == "bfloat16" and bf16_matmul_is_native():
        return torch.bfloat16
    return torch.float32


def negative_mask(b: dict[str, Any], negs: torch.Tensor, cfg: _LossSettings) -> torch.Tensor | None:
    """[B, L, K] negatives each position leaves out of its softmax (None = none): the items the
    user saw in the window or, with `seen_scope="history"`, anywhere before the position."""
    if not cfg.mask_seen_negatives:
        return None
    prior = (b["prior_rows"], b["prior_items"]) if cfg.seen_scope == "history" else None
    return seen_negatives(b["item_ids"], negs, prior)
