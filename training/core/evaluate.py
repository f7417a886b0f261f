"""Full-catalogue ranking evaluation: every item is scored for each evaluated (user, target).

Items the user already saw before the target are excluded (score -inf), never the target itself;
padding id 0 is never a candidate. The popularity baseline goes through the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from training.core.data import PAD, SequenceData, seeded_subset
from training.core.device import CPU, device_of, to_device
from training.core.metrics import ranking_metrics, target_ranks
from training.core.scoring import unit

if TYPE_CHECKING:
    from training.models import SequenceEncoder

KS = (10, 50)


def exclude_seen(
    scores: torch.Tensor, seen_rows: torch.Tensor, seen_items: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Set seen items and padding to -inf in place, keeping the target's own score."""
    target_score = scores.gather(1, targets[:, None])
    scores[:, PAD] = float("-inf")
    scores[seen_rows, seen_items] = float("-inf")
    return scores.scatter_(1, targets[:, None], target_score)


def row_batches(rows: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """`rows` in consecutive chunks of at most `batch_size`."""
    for i in range(0, len(rows), batch_size):
        yield rows[i : i + batch_size]


def _ranks(
    data: SequenceData,
    split: str,
    score: Callable[[dict], torch.Tensor],
    batch_size: int,
    device: torch.device = CPU,
    max_targets: int | None = None,
) -> torch.Tensor:
    """Ranks on the CPU, whichever `device` the batches are scored on; of every target of
    `split`, or of a seeded sample of `max_targets` of them."""
    examples = data.eval_split(split)
    out = []
    for rows in row_batches(seeded_subset(len(examples), max_targets), batch_size):
        b = to_device(data.eval_batch(examples, rows), device)
        scores = exclude_seen(score(b), b["seen_rows"], b["seen_items"], b["target_ids"])
        out.append(target_ranks(scores, b["target_ids"]).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


@torch.no_grad()
def model_ranks(
    model: SequenceEncoder,
    data: SequenceData,
    split: str = "test",
    batch_size: int = 256,
    max_targets: int | None = None,
) -> torch.Tensor:
    """0-based rank of each target of `split` under the model (last hidden state vs all items),
    scored on the model's device."""
    was_training = model.training
    model.eval()
    items = unit(model.item_embeddings())  # once, not per batch

    def score(b: dict) -> torch.Tensor:
        h = model(b["item_ids"], b["timestamps"], b["decision_ts"])[:, -1]
        return unit(h) @ items.T  # core/scoring.py's cosine_scores

    ranks = _ranks(data, split, score, batch_size, device_of(model), max_targets)
    model.train(was_training)
    return ranks


def popularity_ranks(
    data: SequenceData,
    split: str = "test",
    batch_size: int = 256,
    max_targets: int | None = None,
) -> torch.Tensor:
    """Ranks under "most frequent in the training sequences first" (ties: lower id first)."""
    counts = torch.from_numpy(data.train_item_counts()).to(torch.float32)
    return _ranks(
        data,
        split,
        lambda b: counts.expand(len(b["target_ids"]), -1).clone(),
        batch_size,
        max_targets=max_targets,
    )


def evaluate(
    model: SequenceEncoder,
    data: SequenceData,
    split: str = "test",
    ks: tuple[int, ...] = KS,
    batch_size: int = 256,
    max_targets: int | None = None,
) -> dict[str, float]:
    """HR@k, NDCG@k, MRR of `model` on `split` ("valid" or "test"), seen items excluded; on a
    seeded sample of `max_targets` targets where the split has more."""
    return ranking_metrics(model_ranks(model, data, split, batch_size, max_targets), ks)


def evaluate_popularity(
    data: SequenceData,
    split: str = "test",
    ks: tuple[int, ...] = KS,
    batch_size: int = 256,
    max_targets: int | None = None,
) -> dict[str, float]:
    return ranking_metrics(popularity_ranks(data, split, batch_size, max_targets), ks)
