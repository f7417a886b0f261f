"""Sampled softmax: hand-computed values, weights of one = plain BC, accidental hits masked."""

from __future__ import annotations

import math

import torch

from training.losses import sample_negatives, sampled_softmax_loss, seen_negatives

# Item 1 = east, 2 = north, 3 = west (row 0 is padding): cosines with "east" are 1, 0, -1.
EMB = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])


def test_matches_hand_computed_value():
    q = torch.tensor([[5.0, 0.0]])
    loss = sampled_softmax_loss(q, torch.tensor([1]), EMB, torch.tensor([2, 3]), temperature=1.0)
    expected = -(1.0 - math.log(math.e + 1.0 + math.exp(-1.0)))
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)


def test_weights_of_one_equal_unweighted_and_weights_scale_per_position():
    torch.manual_seed(0)
    emb, q = torch.randn(50, 8), torch.randn(30, 8)
    pos, neg = torch.randint(1, 50, (30,)), torch.randint(1, 50, (16,))
    plain = sampled_softmax_loss(q, pos, emb, neg, 0.05)
    ones = sampled_softmax_loss(q, pos, emb, neg, 0.05, torch.ones(30))
    assert torch.allclose(plain, ones, rtol=1e-6)
    # loss = -sum(w * logp) / P (P = number of supervised positions), not / sum(w).
    w = torch.rand(30) * 3
    per_pos = torch.stack(
        [sampled_softmax_loss(q[i : i + 1], pos[i : i + 1], emb, neg, 0.05) for i in range(30)]
    )
    weighted = sampled_softmax_loss(q, pos, emb, neg, 0.05, w)
    assert torch.allclose(weighted, (w * per_pos).sum() / 30, rtol=1e-5)


def test_accidental_hits_and_padding_are_masked():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pos = torch.tensor([1, 2])
    clean = sampled_softmax_loss(q, pos, EMB, torch.tensor([3]), temperature=0.5)
    hit = sampled_softmax_loss(q, pos, EMB, torch.tensor([3, 1, 2, 0]), temperature=0.5)
    # Negative 1 is position 0's target, 2 is position 1's: each only counts for the other.
    manual = torch.stack(
        [
            sampled_softmax_loss(q[:1], pos[:1], EMB, torch.tensor([3, 2]), temperature=0.5),
            sampled_softmax_loss(q[1:], pos[1:], EMB, torch.tensor([3, 1]), temperature=0.5),
        ]
    ).mean()
    assert torch.allclose(hit, manual) and not torch.allclose(hit, clean)


def test_sample_negatives_shapes_and_range():
    gen = torch.Generator().manual_seed(0)
    negs = sample_negatives(
        torch.tensor([4, 4, 7]), n_items=9, num_uniform=64, num_in_batch=5, generator=gen
    )
    assert negs.shape == (66,)  # 64 uniform + the 2 distinct batch targets
    assert negs.min() >= 1 and negs.max() <= 9


def test_seen_negatives_mask_items_already_in_the_input():
    seen = seen_negatives(torch.tensor([[0, 3, 5, 3]]), torch.tensor([3, 5, 7]))
    assert seen[0].tolist() == [
        [False, False, False],
        [True, False, False],
        [True, True, False],
        [True, True, False],
    ]
    q, pos = torch.tensor([[1.0, 0.0]]), torch.tensor([1])
    masked = sampled_softmax_loss(
        q, pos, EMB, torch.tensor([2, 3]), 0.5, negative_mask=torch.tensor([[False, True]])
    )
    assert torch.allclose(masked, sampled_softmax_loss(q, pos, EMB, torch.tensor([2]), 0.5))
