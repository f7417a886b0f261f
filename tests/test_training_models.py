"""Encoders: causality, padding invariance, and that a small model can overfit a toy dataset."""

from __future__ import annotations

import pytest
import torch

from tests.toy import toy_sequences
from training.core.config import ModelConfig, TrainConfig
from training.core.data import build_dataset
from training.core.losses import ALL_ITEMS
from training.models import SequenceEncoder
from training.pretrain.loop import pretrain

KINDS = ["hstu", "sasrec"]


def encoder(kind: str, max_len: int = 10, query_time: str = "own") -> SequenceEncoder:
    torch.manual_seed(0)
    cfg = ModelConfig(kind=kind, d_model=16, n_blocks=2, n_heads=2, max_len=max_len, dropout=0.0,
                      query_time=query_time)  # fmt: skip
    return SequenceEncoder(30, cfg).eval()


def inputs(batch: int = 3, length: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 31, (batch, length), generator=g)
    ids[0, :3] = 0  # a left-padded row
    ts = 1_600_000_000 + torch.randint(1, 100_000, (batch, length), generator=g).cumsum(1)
    return ids, ts


@pytest.mark.parametrize("kind", KINDS)
def test_later_items_never_change_earlier_outputs(kind):
    m, (ids, ts) = encoder(kind), inputs()
    with torch.no_grad():
        h = m(ids, ts)
        for j in (4, 7, 9):
            ids2, ts2 = ids.clone(), ts.clone()
            ids2[:, j] = ids2[:, j] % 30 + 1
            ts2[:, j:] += 10**6  # later events also happen later
            h2 = m(ids2, ts2)
            assert torch.allclose(h[:, :j], h2[:, :j], atol=1e-6)
            assert not torch.allclose(h[:, j], h2[:, j], atol=1e-4)


def next_times(ts: torch.Tensor, request: torch.Tensor) -> torch.Tensor:
    """Each position's query time: the next event's, the request's for the last position."""
    return torch.cat([ts[:, 1:], request[:, None]], dim=1)


def test_query_times_reach_only_their_own_position():
    # "decision": position i decides at t_(i+1), so its output may depend on when the next event
    # happens, never on which item it is; the request time moves the last position only.
    m, (ids, ts) = encoder("hstu", query_time="decision"), inputs()
    qt = next_times(ts, ts[:, -1] + 60)
    with torch.no_grad():
        h = m(ids, ts, qt)
        for j in (4, 7, 9):
            ids2, ts2 = ids.clone(), ts.clone()
            ids2[:, j] = ids2[:, j] % 30 + 1
            ts2[:, j + 1 :] += 10**6
            h2 = m(ids2, ts2, next_times(ts2, qt[:, -1] + (10**6 if j < 9 else 0)))
            assert torch.allclose(h[:, :j], h2[:, :j], atol=1e-6)
        later = m(ids, ts, next_times(ts, ts[:, -1] + 10**7))
        assert torch.allclose(h[:, :-1], later[:, :-1], atol=1e-6)
        assert not torch.allclose(h[:, -1], later[:, -1], atol=1e-4)
        assert torch.allclose(m(ids, ts), m(ids, ts, ts), atol=1e-6)  # none given: own times
    own = encoder("hstu")
    with torch.no_grad():  # "own" ignores query times
        assert torch.allclose(own(ids, ts), own(ids, ts, qt), atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_left_padding_does_not_change_outputs(kind):
    m, (ids, ts) = encoder(kind), inputs(batch=1, length=6)
    padded_ids = torch.cat([torch.zeros(1, 4, dtype=ids.dtype), ids], dim=1)
    padded_ts = torch.cat([torch.zeros(1, 4, dtype=ts.dtype), ts], dim=1)
    with torch.no_grad():
        assert torch.allclose(m(ids, ts), m(padded_ids, padded_ts)[:, 4:], atol=1e-5)


@pytest.mark.parametrize(("kind", "negatives"), [("hstu", 32), ("sasrec", 32), ("hstu", ALL_ITEMS)])
def test_overfits_a_toy_dataset(kind, negatives):
    data = build_dataset(toy_sequences(n_users=24, n_items=20, length=10), max_len=10)
    mcfg = ModelConfig(kind=kind, d_model=32, n_blocks=1, n_heads=1, max_len=10, dropout=0.0)
    # Plain BC (seen items stay negatives), so the target must beat every other item; 32 sampled
    # negatives or the full softmax over the catalogue.
    tcfg = TrainConfig(epochs=40, batch_size=24, lr=1e-2, num_negatives=negatives,
                       temperature=0.05, patience=40, mask_seen_negatives=False,
                       num_threads=1)  # fmt: skip
    result = pretrain(data, mcfg, tcfg, log=lambda s: None)
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.2 * losses[0]
    # Every train window's last target is ranked first among all items.
    m = result.model
    m.load_state_dict(result.final_state)
    b = data.train_batch(torch.arange(len(data.windows)).numpy())
    with torch.no_grad():
        h = torch.nn.functional.normalize(m(b["item_ids"], b["timestamps"])[:, -1], dim=-1)
        scores = h @ torch.nn.functional.normalize(m.item_embeddings(), dim=-1).T
    scores[:, 0] = float("-inf")
    assert (scores.argmax(1) == b["target_ids"][:, -1]).all()
