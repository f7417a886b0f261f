"""Ranking metrics from the 0-based rank of each target among all candidate items."""

from __future__ import annotations

import torch

# The columns of every ranking table, in this order (ranking_metrics' keys for ks = (10, 50)).
RANKING_METRICS = ("ndcg@10", "hr@10", "ndcg@50", "hr@50", "mrr")


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank of targets[b] in scores[b] ([B, N]); ties go to the lower item id.

    Breaking ties by id (not optimistically) keeps ranks deterministic and stops a constant
    scorer from looking perfect.
    """
    t = scores.gather(1, targets[:, None])
    ids = torch.arange(scores.shape[1], device=scores.device)[None, :]
    ahead = (scores > t) | ((scores == t) & (ids < targets[:, None]))
    return ahead.sum(dim=1)


def ranking_metrics(ranks: torch.Tensor, ks: tuple[int, ...] = (10, 50)) -> dict[str, float]:
    """HR@k, NDCG@k (one relevant item: 1/log2(rank+2) inside the top k) and MRR (uncut)."""
    if ranks.numel() == 0:
        return {
            **{f"{m}@{k}": float("nan") for k in ks for m in ("hr", "ndcg")},
            "mrr": float("nan"),
        }
    r = ranks.to(torch.float64)
    out: dict[str, float] = {}
    for k in ks:
        hit = r < k
        out[f"hr@{k}"] = hit.double().mean().item()
        out[f"ndcg@{k}"] = torch.where(hit, 1.0 / torch.log2(r + 2.0), 0.0).mean().item()
    out["mrr"] = (1.0 / (r + 1.0)).mean().item()
    return out
