"""Ranking metrics and full-catalogue evaluation against hand-computed values."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
import torch

from training.core.data import build_dataset
from training.core.evaluate import exclude_seen, popularity_ranks
from training.core.metrics import ranking_metrics, target_ranks


def test_target_ranks_counts_better_items_and_breaks_ties_by_id():
    scores = torch.tensor([[0.1, 0.5, 0.3, 0.9], [0.5, 0.5, 0.5, 0.5], [0.2, 0.1, 0.0, 0.3]])
    assert target_ranks(scores, torch.tensor([2, 2, 3])).tolist() == [2, 2, 0]


def test_ranking_metrics_hand_computed():
    m = ranking_metrics(torch.tensor([0, 2, 11]), ks=(1, 10))
    assert m["hr@1"] == pytest.approx(1 / 3)
    assert m["hr@10"] == pytest.approx(2 / 3)
    assert m["ndcg@1"] == pytest.approx(1 / 3)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(4)) / 3)
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 12) / 3)


def test_exclude_seen_never_excludes_target():
    scores = torch.tensor([[9.0, 1.0, 2.0, 3.0], [9.0, 3.0, 2.0, 1.0]])
    rows, items = torch.tensor([0, 0, 1]), torch.tensor([3, 1, 1])
    out = exclude_seen(scores, rows, items, targets=torch.tensor([1, 3]))
    inf = float("-inf")
    assert out.tolist() == [[inf, 1.0, 2.0, inf], [inf, inf, 2.0, 1.0]]
    assert target_ranks(out, torch.tensor([1, 3])).tolist() == [1, 1]


def test_popularity_baseline_excludes_seen_items():
    tab = pa.table(
        {
            "user_id": ["a", "b", "c"],
            "item_ids": [["p", "q", "r", "s"], ["q", "p", "r"], ["q", "r", "s"]],
            "timestamps": [[1, 2, 3, 4], [1, 2, 3], [1, 2, 3]],
            "rewards": [[1.0] * 4, [1.0] * 3, [1.0] * 3],
            "length": [4, 3, 3],
        }
    )
    d = build_dataset(tab, max_len=5)
    # Train = first len-2 events: p q | q | q -> counts p=1, q=3, r=0, s=0.
    assert d.train_item_counts().tolist() == [0, 1, 3, 0, 0]
    ranks = popularity_ranks(d, "test").tolist()
    # a: target s, seen p q r -> only s left (rank 0). b: target r, seen q p -> r, s tie at 0,
    # r has the lower id (rank 0). c: target s, seen q r -> p (1) ahead of s (0): rank 1.
    assert ranks == [0, 0, 1]
    # Valid: a (target r, seen p q) 0; b (target p, seen q) 0; c (target r, seen q: p first) 1.
    assert popularity_ranks(d, "valid").tolist() == [0, 0, 1]
