"""Advantages, A-SFT and the baselines: hand-checked losses, beta -> inf = BC, zero-sum advantages,
the Parquet round trip, and every method's finetune() on a tiny dataset."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest
import torch

import training.posttrain.advantages as advantages
from tests.toy import toy_sequences
from training.core.config import ModelConfig
from training.core.data import build_dataset
from training.core.losses import sampled_softmax_loss
from training.core.scoring import catalogue_logits
from training.models import SequenceEncoder
from training.posttrain.advantages import (
    FIELDS,
    compute_advantages,
    read_advantages,
    scored_windows,
    states_per_call,
    with_scored_windows,
    write_advantages,
)
from training.posttrain.batch import training_batch
from training.posttrain.config import PosttrainConfig
from training.posttrain.finetune import finetune
from training.posttrain.methods import REGISTRY
from training.posttrain.methods.asft import asft_weights
from training.posttrain.methods.base import subsample_states
from training.posttrain.methods.cql import cql_loss
from training.posttrain.methods.dpo import (
    dpo_loss,
    ipo_loss,
    pairs_from_candidates,
    preference_margin,
    sample_candidates,
    select_pairs,
)
from training.posttrain.methods.ppo import kl_to_ref, ppo_loss
from training.posttrain.methods.rwbc import reward_weights
from training.posttrain.settings import AdvantagesSettings

torch.set_num_threads(1)
QUIET = lambda s: None  # noqa: E731
MCFG = ModelConfig(kind="hstu", d_model=16, n_blocks=1, n_heads=2, max_len=8, dropout=0.1)
# The study-level values PosttrainConfig takes from the settings: these tests were written
# against its former defaults, passed explicitly here.
STUDY = dict(weight_clip=20.0, self_normalise=True, steps=300, batch_size=64, lr=3e-4)
SMALL = dict(steps=3, batch_size=8, lr=1e-2, num_negatives=8, log_every=1)
ADV32 = AdvantagesSettings(batch_size=32)  # compute_advantages' former default batch


def config(method: str, **kw) -> PosttrainConfig:
    return PosttrainConfig(method, **{**STUDY, **kw})  # type: ignore[arg-type]


class TableRewardModel:
    """A real `CatalogueRewardModel`: r_hat(u, a) of member k = table[u, a, k], history ignored."""

    def __init__(self, table: torch.Tensor) -> None:
        self.table = table  # [n_users + 1, n_items + 1, K]
        self.n_items, self.n_members = table.shape[1] - 1, table.shape[2]

    def score_catalogue(self, item_ids, timestamps, user_ids, decision_ts) -> torch.Tensor:
        r = self.table[user_ids].permute(2, 0, 1)  # [K, B, n_items + 1]
        return r[:, :, None, :].expand(-1, -1, item_ids.shape[1], -1).clone()

    def score_catalogue_mean(self, item_ids, timestamps, user_ids, decision_ts) -> torch.Tensor:
        return self.score_catalogue(item_ids, timestamps, user_ids, decision_ts).mean(0)

    def score_items(self, item_ids, timestamps, user_ids, decision_ts, candidates):
        r = self.score_catalogue(item_ids, timestamps, user_ids, decision_ts)
        return r.gather(-1, candidates.expand(len(r), -1, -1, -1))


def tiny_data(with_event_ids: bool = False):
    table = toy_sequences(n_users=12, n_items=10, length=10, seed=1)
    if with_event_ids:
        users, lengths = table["user_id"].to_pylist(), table["length"].to_pylist()
        ids = [[f"{u}-{i}" for i in range(n)] for u, n in zip(users, lengths, strict=True)]
        table = table.append_column("event_ids", pa.array(ids, pa.list_(pa.string())))
    return build_dataset(table, max_len=6)  # max_len < length: several windows per user


def tiny_policy(data, seed: int = 0) -> SequenceEncoder:
    torch.manual_seed(seed)
    return SequenceEncoder(data.n_items, MCFG).eval()


def reward_model(data, members: int = 3, noise: float = 0.05, seed: int = 0) -> TableRewardModel:
    """Members agree up to `noise`, so most pairs of distant rewards have disjoint intervals."""
    g = torch.Generator().manual_seed(seed)
    base = 1 + 4 * torch.rand(len(data.vocab.users) + 1, data.n_items + 1, 1, generator=g)
    return TableRewardModel(base + noise * torch.randn(*base.shape[:2], members, generator=g))


def params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --- the weight formula and the weighted sampled softmax (A-SFT, BC, RW-BC) ----------------------


def test_asft_weight_formula_clips_and_tends_to_one():
    a = torch.tensor([0.0, math.log(2.0), 10.0, -math.log(4.0)])
    assert torch.allclose(asft_weights(a, 1.0, 5.0), torch.tensor([1.0, 2.0, 5.0, 0.25]))
    assert torch.allclose(asft_weights(a, 2.0, 5.0), torch.tensor([1.0, 2**0.5, 5.0, 0.5]))
    assert torch.equal(asft_weights(a, math.inf, 5.0), torch.ones(4))
    assert torch.isfinite(asft_weights(torch.tensor([1e6]), 1e-3, 20.0)).all()  # no overflow
    with pytest.raises(ValueError, match="beta"):
        asft_weights(a, 0.0, 5.0)
    assert torch.equal(reward_weights(np.array([1.0, 5.0, 3.0]), 4.0), torch.tensor([1.0, 4, 3]))


def test_weighted_sampled_softmax_hand_case_self_normalised_and_by_count():
    # 2 states, 3 items: item 1 = east, 2 = north, 3 = west; temperature 1, all items negatives.
    emb = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    q, targets, negs = (
        torch.tensor([[2.0, 0.0], [0.0, 3.0]]),
        torch.tensor([1, 2]),
        torch.arange(1, 4),
    )
    # State 1 (target east): cosines 1 | north 0, west -1 (east itself is masked as a hit).
    nll1 = math.log(math.e + 1 + math.exp(-1)) - 1
    # State 2 (target north): cosines 1 | east 0, west 0.
    nll2 = math.log(math.e + 2) - 1
    w = torch.tensor([1.0, 3.0])

    def loss(weights=None, normalise="count"):
        return sampled_softmax_loss(q, targets, emb, negs, 1.0, weights, normalise=normalise).item()

    assert math.isclose(loss(), (nll1 + nll2) / 2, rel_tol=1e-6)  # BC
    assert math.isclose(loss(w, "weights"), (nll1 + 3 * nll2) / 4, rel_tol=1e-6)  # A-SFT default
    assert math.isclose(loss(w, "count"), (nll1 + 3 * nll2) / 2, rel_tol=1e-6)
    rw = reward_weights(torch.tensor([1.0, 5.0]), 4.0).float()  # RW-BC: reward 5 clipped at 4
    assert math.isclose(loss(rw, "weights"), (nll1 + 4 * nll2) / 5, rel_tol=1e-6)


def test_asft_at_infinite_beta_is_bc_exactly():
    data = tiny_data()
    policy, rm = tiny_policy(data), reward_model(data)
    adv = compute_advantages(policy, rm, data, ADV32, log=QUIET)
    bc = finetune(policy, data, config("bc", **SMALL), log=QUIET)
    inf = finetune(policy, data, config("asft", beta=math.inf, **SMALL),
                   advantages=adv, log=QUIET)  # fmt: skip
    hot = finetune(policy, data, config("asft", beta=0.3, **SMALL),
                   advantages=adv, log=QUIET)  # fmt: skip
    a, b, c = params(bc), params(inf), params(hot)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)  # finite beta does change the update


# --- advantages ----------------------------------------------------------------------------------


def brute_force(policy, rm, data, window: int, lcb: float = 0.0) -> dict[int, tuple[float, float]]:
    """V and A for each target of one window, one position at a time, straight from the formulas."""
    b = data.train_batch(np.array([window]))
    user = data.events.users[data.events.row_of_event[data.windows.starts[window]]]
    with torch.no_grad():
        h = policy(b["item_ids"], b["timestamps"])[0]
        e = torch.nn.functional.normalize(policy.item_embeddings()[1:].double(), dim=-1)
    r = rm.table[user].to(torch.float64)  # [n_items + 1, K]
    r_hat = r.mean(1) - lcb * r.std(1)
    out = {}
    for t, event in enumerate(b["target_index"][0]):
        if event < 0:
            continue
        pi = torch.softmax(torch.nn.functional.normalize(h[t].double(), dim=-1) @ e.T / 0.1, -1)
        v = float((pi * r_hat[1:]).sum())
        out[int(event)] = (v, float(r_hat[data.events.items[event]]) - v)
    return out


def test_advantages_are_zero_sum_per_state_and_match_the_formula():
    data = tiny_data()
    policy, rm = tiny_policy(data), reward_model(data, noise=0.5)
    windows = zip(data.windows.starts, data.windows.ends, strict=True)
    targets = np.concatenate([np.arange(s + 1, e) for s, e in windows])
    exact = {}
    for lcb in (0.0, 1.0):
        exact[lcb] = adv = compute_advantages(
            policy, rm, data, AdvantagesSettings(lcb=lcb, batch_size=5), log=QUIET
        )
        has = ~np.isnan(adv.advantage)
        assert np.array_equal(np.flatnonzero(has), np.sort(targets))  # every target, only targets
        assert np.abs(adv.state_weighted_advantage[has]).max() < 1e-5
        assert np.abs(adv.advantage[has]).max() > 0.01  # not trivially zero
        for w in (0, len(data.windows) - 1):
            for event, (v, a) in brute_force(policy, rm, data, w, lcb).items():
                assert math.isclose(adv.v[event], v, abs_tol=1e-5)
                assert math.isclose(adv.advantage[event], a, abs_tol=1e-5)
    top = compute_advantages(policy, rm, data, replace(ADV32, top_k=3), log=QUIET)
    assert np.nanmax(np.abs(top.state_weighted_advantage)) < 1e-5
    full = compute_advantages(policy, rm, data, replace(ADV32, top_k=data.n_items), log=QUIET)
    assert np.allclose(full.v, exact[0.0].v, equal_nan=True)
    assert not np.allclose(top.v, exact[0.0].v, equal_nan=True)
    # The top-k path scores candidates only (score_items): over every title it is the exact
    # path, the lower confidence bound included.
    full_lcb = compute_advantages(
        policy, rm, data, replace(ADV32, lcb=1.0, top_k=data.n_items), log=QUIET
    )
    for name in ("v", "advantage", "r_hat_std"):
        np.testing.assert_allclose(
            getattr(full_lcb, name), getattr(exact[1.0], name), atol=1e-5, equal_nan=True
        )
    # A score budget smaller than one window's catalogue row: one window per call, same values.
    one = compute_advantages(policy, rm, data, replace(ADV32, max_scores_per_call=1), log=QUIET)
    np.testing.assert_allclose(one.advantage, exact[0.0].advantage, atol=1e-5, equal_nan=True)
    assert states_per_call(replace(ADV32, max_scores_per_call=1), data.max_len, data.n_items) == 1
    assert states_per_call(ADV32, data.max_len, data.n_items) == ADV32.batch_size


def test_advantages_taken_a_few_targets_per_pass_are_the_same(monkeypatch):
    """The catalogue path's [targets, titles] passes go `ROWS_PER_PASS` targets at a time: a
    batch cut into many passes (the last one short) gives every figure of one pass."""
    data = tiny_data()
    policy, rm = tiny_policy(data), reward_model(data, noise=0.5)
    for lcb in (0.0, 1.0):
        settings = replace(ADV32, lcb=lcb)
        whole = compute_advantages(policy, rm, data, settings, log=QUIET)
        targets = int((~np.isnan(whole.advantage)).sum())
        assert targets < advantages.ROWS_PER_PASS  # one pass per batch
        monkeypatch.setattr(advantages, "ROWS_PER_PASS", 7)
        assert targets % 7 and targets > 3 * 7  # several passes and a short last one
        cut = compute_advantages(policy, rm, data, settings, log=QUIET)
        monkeypatch.undo()
        for name in FIELDS:
            np.testing.assert_allclose(
                getattr(cut, name), getattr(whole, name), rtol=0, atol=1e-6, equal_nan=True
            )


def test_max_windows_scores_a_seeded_sample_and_post_training_draws_from_it():
    data = tiny_data()
    policy, rm = tiny_policy(data), reward_model(data)
    every = compute_advantages(policy, rm, data, ADV32, log=QUIET)
    assert with_scored_windows(data, every) is data  # all windows scored: the data unchanged
    n = len(data.windows)
    some = compute_advantages(policy, rm, data, replace(ADV32, max_windows=3), log=QUIET)
    picked = scored_windows(n, 3)
    assert len(picked) == 3 and np.array_equal(picked, scored_windows(n, 3))  # seeded
    pool = with_scored_windows(data, some)
    assert np.array_equal(pool.windows.starts, data.windows.starts[picked])
    assert np.array_equal(pool.windows.ends, data.windows.ends[picked])
    for s, e in zip(pool.windows.starts, pool.windows.ends, strict=True):  # same values as all
        np.testing.assert_allclose(some.advantage[s + 1 : e], every.advantage[s + 1 : e], atol=1e-6)
    assert np.isnan(some.advantage).sum() > np.isnan(every.advantage).sum()
    assert pool.test is data.test and pool.valid is data.valid  # evaluation untouched
    with pytest.raises(ValueError, match="max_windows must be >= 1"):
        AdvantagesSettings(max_windows=0)


@pytest.mark.parametrize("with_event_ids", [False, True])
def test_advantages_parquet_round_trip(tmp_path, with_event_ids):
    data = tiny_data(with_event_ids)
    adv = compute_advantages(tiny_policy(data), reward_model(data), data, ADV32, log=QUIET)
    table = write_advantages(adv, data, tmp_path / "adv.parquet")
    assert table.num_rows == int((~np.isnan(adv.advantage)).sum())
    assert ("event_id" in table.column_names) == with_event_ids
    assert table.schema.field("event_ts").type == pa.timestamp("us", tz="UTC")
    back = read_advantages(tmp_path / "adv.parquet", data)
    for name in FIELDS:
        assert np.array_equal(getattr(back, name), getattr(adv, name), equal_nan=True)
    head = ["event_id"] if with_event_ids else []
    assert table.column_names == head + ["user_id", "item_id", "event_ts", "reward", *FIELDS]


# --- the baselines' losses on hand-checked cases -------------------------------------------------


def test_dpo_and_ipo_losses_hand_case():
    # Two pairs; h = (log pi_w - log ref_w) - (log pi_l - log ref_l).
    h = preference_margin(torch.tensor([-1.0, -2.0]), torch.tensor([-3.0, -1.0]),
                          torch.tensor([-2.0, -2.0]), torch.tensor([-2.0, -2.0]))  # fmt: skip
    assert torch.allclose(h, torch.tensor([2.0, -1.0]))
    # DPO, beta = ln(3)/2: sigmoid(ln 3) = 3/4 and sigmoid(-ln(3)/2) = 1/(1 + sqrt 3).
    beta = math.log(3) / 2
    expected = (-math.log(3 / 4) + math.log(1 + math.sqrt(3))) / 2
    assert math.isclose(dpo_loss(h, beta).item(), expected, rel_tol=1e-6)
    # IPO, beta = 1/2: target margin 1 -> ((2 - 1)^2 + (-1 - 1)^2) / 2 = 2.5.
    assert math.isclose(ipo_loss(h, 0.5).item(), 2.5, rel_tol=1e-6)


def test_dpo_pairs_need_disjoint_confidence_intervals():
    mean = torch.tensor([[4.0, 2.0, 1.0], [3.0, 2.5, 2.0]])
    std = torch.full((2, 3), 0.5)
    win, lose, keep = select_pairs(mean, std, confidence=1.0)
    # State 1: [3.5, 4.5] vs [0.5, 1.5] are disjoint; state 2: [2.5, 3.5] vs [1.5, 2.5] touch.
    assert win.tolist() == [0, 0] and lose.tolist() == [2, 2] and keep.tolist() == [True, False]
    assert select_pairs(mean, std, confidence=0.0)[2].tolist() == [True, True]
    # Sampled from pi_ref on random rewards: every kept pair is disjoint, and some are rejected.
    g = torch.Generator().manual_seed(0)
    mean, std = 1 + 4 * torch.rand(200, 11, generator=g), torch.rand(200, 11, generator=g)
    ref = torch.log_softmax(torch.randn(200, 11, generator=g), -1)
    ref[:, 0] = -math.inf  # padding
    cand = sample_candidates(ref, 4, generator=g)
    assert cand.shape == (200, 4) and (cand > 0).all()
    assert all(len(set(row)) == 4 for row in cand.tolist())  # distinct candidates per state
    s, a_w, a_l = pairs_from_candidates(cand, mean.gather(1, cand), std.gather(1, cand), 1.0)
    assert 0 < len(s) < 200 and (a_w > 0).all() and (a_l > 0).all()
    assert (mean[s, a_w] - std[s, a_w] > mean[s, a_l] + std[s, a_l]).all()


def test_cql_loss_hand_case():
    inf = -math.inf  # column 0 is padding
    q = torch.tensor([[inf, 0.0, 0.0, 0.0], [inf, 0.0, math.log(3), math.log(4)]])
    actions, rewards = torch.tensor([1, 2]), torch.tensor([1.0, 2.0])
    # State 1: Q(a) = 0, logsumexp = ln 3. State 2: Q(a) = ln 3, logsumexp = ln(1 + 3 + 4) = ln 8.
    td = (0.5 * (0 - 1) ** 2 + 0.5 * (math.log(3) - 2) ** 2) / 2
    conservative = (math.log(3) + math.log(8) - math.log(3)) / 2
    assert math.isclose(cql_loss(q, actions, rewards, 0.5).item(), td + 0.5 * conservative,
                        rel_tol=1e-6)  # fmt: skip
    # A state without a logged reward keeps only the conservative term.
    no_r = cql_loss(q, actions, torch.tensor([1.0, math.nan]), 0.5).item()
    assert math.isclose(no_r, 0.5 * (0 - 1) ** 2 + 0.5 * conservative, rel_tol=1e-6)


def test_ppo_loss_hand_case():
    # ratios 1.5 (A = +1, clipped to 1.2) and 0.5 (A = -1, clipped to 0.8: min(-0.5, -0.8)).
    logp = torch.log(torch.tensor([0.3, 0.1]))
    old = torch.log(torch.tensor([0.2, 0.2]))
    adv = torch.tensor([1.0, -1.0])
    surrogate = -(1.2 * 1 + 0.8 * -1) / 2
    # KL([1/2, 1/4, 1/4] || uniform) = 1/2 ln(3/2) + 1/2 ln(3/4) = 1/2 ln(9/8).
    pi = torch.log(torch.tensor([[0.0, 0.5, 0.25, 0.25]]))
    ref = torch.log(torch.tensor([[0.0, 1 / 3, 1 / 3, 1 / 3]]))
    kl = kl_to_ref(pi, ref)
    assert math.isclose(kl.item(), 0.5 * math.log(9 / 8), rel_tol=1e-6)
    loss = ppo_loss(logp, old, adv, kl, clip=0.2, kl_coef=2.0)
    assert math.isclose(loss.item(), surrogate + 2 * 0.5 * math.log(9 / 8), rel_tol=1e-6)


# --- finetune() ----------------------------------------------------------------------------------


def test_every_method_trains_a_copy_and_leaves_the_input_alone():
    data = tiny_data()
    policy, rm = tiny_policy(data), reward_model(data)
    adv = compute_advantages(policy, rm, data, ADV32, log=QUIET)
    before, rows = params(policy), []
    for method in REGISTRY:
        rows.clear()
        cfg = config(method, ppo_epochs=2, max_states=12, **SMALL)
        out = finetune(policy, data, cfg, advantages=adv, reward_model=rm, log=QUIET,
                       on_step=lambda i, row: rows.append(row))  # fmt: skip
        after = params(out)
        assert len(rows) == cfg.steps and all(math.isfinite(r["loss"]) for r in rows), method
        assert not all(torch.equal(before[k], after[k]) for k in before), method
        assert not out.training
        if method in ("dpo", "ipo"):
            assert all(r["pairs"] > 0 for r in rows)
    assert all(torch.equal(before[k], v) for k, v in params(policy).items())


def test_dpo_and_ppo_start_at_the_reference_policy_without_dropout_noise():
    data = tiny_data()
    policy, rm = tiny_policy(data), reward_model(data)  # the policy has dropout 0.1
    first = {}
    for method in ("dpo", "ppo"):
        cfg = config(method, ppo_epochs=1, **{**SMALL, "steps": 1})
        finetune(policy, data, cfg, reward_model=rm, log=QUIET,
                 on_step=lambda i, row, m=method: first.setdefault(m, row))  # fmt: skip
    assert abs(first["dpo"]["margin"]) < 1e-6  # log pi - log pi_ref = 0 before the first update
    assert abs(first["ppo"]["kl"]) < 1e-6


def test_subsample_states_keeps_a_random_subset_of_targets():
    data = tiny_data()
    b = training_batch(data, np.arange(8))
    n = int((b["target_ids"] != 0).sum())
    sub = subsample_states(b, 5, torch.Generator().manual_seed(0))
    kept = sub["target_ids"] != 0
    assert int(kept.sum()) == 5 and n > 5
    assert torch.equal(sub["target_ids"][kept], b["target_ids"][kept])
    assert np.array_equal(sub["target_index"] >= 0, kept.numpy())
    assert subsample_states(b, n, torch.Generator()) is b


def test_finetune_rejects_missing_inputs_and_bad_configs():
    data = tiny_data()
    policy = tiny_policy(data)
    with pytest.raises(ValueError, match="unknown method"):
        config("sft")
    with pytest.raises(ValueError, match="beta"):
        config("asft", beta=-1.0)
    with pytest.raises(ValueError, match="needs advantages"):
        finetune(policy, data, config("asft", **SMALL), log=QUIET)
    with pytest.raises(ValueError, match="needs a reward model"):
        finetune(policy, data, config("ppo", **SMALL), log=QUIET)
    adv = compute_advantages(policy, reward_model(data), data, ADV32, log=QUIET)
    adv.advantage[np.flatnonzero(~np.isnan(adv.advantage))[0]] = np.nan
    with pytest.raises(ValueError, match="1 training targets have no advantage"):
        finetune(policy, data, replace(config("asft", **SMALL)), advantages=adv, log=QUIET)
    wrong = TableRewardModel(torch.rand(len(data.vocab.users) + 1, data.n_items + 3, 2))
    with pytest.raises(ValueError, match="catalogue sizes differ"):
        compute_advantages(policy, wrong, data, ADV32, log=QUIET)
    logits = catalogue_logits(torch.randn(2, 16), policy.item_embeddings(), 0.1)
    assert torch.isinf(logits[:, 0]).all() and torch.isfinite(logits[:, 1:]).all()
