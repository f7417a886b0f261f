"""Sampled softmax: hand-computed values, weights of one = plain BC, accidental hits masked."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from training.core.losses import (
    ALL_ITEMS,
    sample_negatives,
    sampled_softmax_loss,
    seen_negatives,
)

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


def test_seen_negatives_with_prior_history_mask_every_position():
    prior = (torch.tensor([0, 1]), torch.tensor([7, 5]))  # row 0 saw 7, row 1 saw 5 earlier
    seen = seen_negatives(torch.tensor([[0, 3], [0, 0]]), torch.tensor([3, 5, 7]), prior)
    assert seen[0].tolist() == [[False, False, True], [True, False, True]]
    assert seen[1].tolist() == [[False, True, False], [False, True, False]]


def test_all_items_sentinel_returns_the_whole_catalogue_once():
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    negs = sample_negatives(torch.tensor([2]), n_items=5, num_uniform=ALL_ITEMS, generator=gen)
    assert negs.tolist() == [1, 2, 3, 4, 5]
    assert torch.equal(gen.get_state(), state)  # nothing drawn
    with pytest.raises(ValueError, match="num_uniform"):
        sample_negatives(torch.tensor([2]), n_items=5, num_uniform=-2)


def test_full_softmax_is_cross_entropy_over_every_other_item():
    # Hand-checked: with every item as a negative, the loss is the plain cross-entropy of the
    # cosine/temperature logits over items 1..n (the target counted once, padding never).
    torch.manual_seed(1)
    emb, q = torch.randn(8, 4), torch.randn(6, 4)
    pos = torch.tensor([1, 3, 3, 7, 2, 5])
    full = sampled_softmax_loss(q, pos, emb, sample_negatives(pos, 7, ALL_ITEMS), 0.2)
    logits = F.normalize(q, dim=-1) @ F.normalize(emb[1:], dim=-1).T / 0.2
    assert torch.allclose(full, F.cross_entropy(logits, pos - 1), rtol=1e-5)
    # The same as sampled softmax whose negatives are exactly the other items, per position.
    per_pos = torch.stack(
        [
            sampled_softmax_loss(
                q[i : i + 1],
                pos[i : i + 1],
                emb,
                torch.tensor([j for j in range(1, 8) if j != int(pos[i])]),
                0.2,
            )
            for i in range(6)
        ]
    )
    assert torch.allclose(full, per_pos.mean(), rtol=1e-5)
    # Supervision weights of one = unweighted; seen items masked = removed from the softmax.
    negs = sample_negatives(pos, 7, ALL_ITEMS)
    ones = sampled_softmax_loss(q, pos, emb, negs, 0.2, torch.ones(6))
    assert torch.allclose(full, ones, rtol=1e-6)
    seen = torch.zeros(6, 7, dtype=torch.bool)
    seen[0, 3] = True  # position 0 already saw item 4
    seen[1, 2] = True  # position 1 "saw" its own target (item 3): the target is never dropped
    masked = sampled_softmax_loss(q, pos, emb, negs, 0.2, negative_mask=seen)
    logits[0, 3] = float("-inf")
    assert torch.allclose(masked, F.cross_entropy(logits, pos - 1), rtol=1e-5)


def test_bfloat16_logits_matmul_stays_close_to_float32():
    # The opt-in bf16 matmul rounds logits to ~3 digits: the loss and every gradient stay within
    # about a percent of float32's, with the same masking.
    g = torch.Generator().manual_seed(3)
    n, d, p = 200, 16, 64
    emb = torch.randn(n + 1, d, generator=g, requires_grad=True)
    query = torch.randn(p, d, generator=g, requires_grad=True)
    targets = torch.randint(1, n + 1, (p,), generator=g)
    mask = torch.rand(p, n, generator=g) < 0.1
    negs = sample_negatives(targets, n, ALL_ITEMS)
    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        loss = sampled_softmax_loss(query, targets, emb, negs, 0.1, negative_mask=mask,
                                    matmul_dtype=dtype)  # fmt: skip
        out[dtype] = (loss.detach(), *torch.autograd.grad(loss, (query, emb)))
    for a, b in zip(out[torch.float32], out[torch.bfloat16], strict=True):
        assert b.dtype == torch.float32
        assert torch.allclose(a, b, rtol=2e-2, atol=2e-2 * float(a.abs().max()))
