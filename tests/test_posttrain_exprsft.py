"""Exp-RSFT: the weight formula by hand (centring and clip), lambda -> inf is BC exactly, finite
weights on every training target, a missing logged reward is an error, and the lambda sweep."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.test_training_posttrain_methods import (
    QUIET,
    SMALL,
    config,
    params,
    tiny_data,
    tiny_policy,
)
from training.posttrain.finetune import finetune
from training.posttrain.methods import REGISTRY
from training.posttrain.methods.base import train_targets
from training.posttrain.methods.exprsft import event_weights, exprsft_weights, mean_target_reward
from training.posttrain.settings import PosttrainSettings

torch.set_num_threads(1)


def test_weight_formula_by_hand_centres_and_clips():
    r = np.array([1.0, 3.0, 5.0, 4.0, np.nan])
    # Centred at 3: exponents -2, 0, 2, 1 (lambda 1); exp(2) = 7.39 is clipped at 5.
    w = exprsft_weights(r, 3.0, 1.0, 5.0)
    want = torch.tensor([math.exp(-2.0), 1.0, 5.0, math.e], dtype=torch.float64)
    assert torch.allclose(w[:4], want) and torch.isnan(w[4])
    # lambda 2 halves the exponents: exp(1) = 2.72 stays under the clip.
    w2 = exprsft_weights(r[:4], 3.0, 2.0, 5.0)
    assert torch.allclose(w2, torch.tensor([math.exp(-1.0), 1.0, math.e, math.exp(0.5)]).double())
    # Centring: uncentred, lambda 0.1 puts every 1-5 reward (exp(10) and up) into the clip.
    assert torch.allclose(exprsft_weights(r[:4], 0.0, 0.1, 20.0), torch.full((4,), 20.0).double())
    centred = exprsft_weights(r[:4], 3.0, 0.1, 20.0)  # centred: below-mean rewards weigh less
    assert centred[0] < centred[1] == 1.0 < centred[3] and centred[2] == centred[3]
    assert torch.equal(exprsft_weights(r[:4], 3.0, math.inf, 5.0), torch.ones(4).double())
    with pytest.raises(ValueError, match="beta"):
        exprsft_weights(r, 3.0, 0.0, 5.0)


def test_weights_are_centred_by_the_training_targets_mean_and_finite_on_each():
    data = tiny_data()
    targets = train_targets(data)
    rewards = data.events.rewards.astype(np.float64)
    assert len(targets) < len(rewards)  # the windows' first events are no targets
    mean = float(np.mean(rewards[targets]))
    assert mean_target_reward(data) == pytest.approx(mean, rel=1e-12)
    cfg = config("exprsft", beta=0.5)
    w = event_weights(data, cfg, None)
    want = np.minimum(np.exp((rewards - mean) / 0.5), cfg.weight_clip)
    assert np.allclose(w.numpy(), want, rtol=1e-12)
    assert torch.isfinite(w[targets]).all() and (w[targets] > 0).all()


def test_at_infinite_lambda_one_step_is_bc_exactly():
    data = tiny_data()
    policy = tiny_policy(data)
    one = {**SMALL, "steps": 1}
    bc_rows, rows = [], []
    bc = finetune(policy, data, config("bc", **one), log=QUIET,
                  on_step=lambda i, row: bc_rows.append(row))  # fmt: skip
    a = params(bc)
    for lam in (math.inf, 1e12):  # 1e12: every weight rounds to exactly 1 in float32
        rows.clear()
        out = finetune(policy, data, config("exprsft", beta=lam, **one), log=QUIET,
                       on_step=lambda i, row: rows.append(row))  # fmt: skip
        assert rows[0]["loss"] == bc_rows[0]["loss"] and rows[0]["mean_weight"] == 1.0, lam
        b = params(out)
        assert all(torch.equal(a[k], b[k]) for k in a), lam
    hot = params(finetune(policy, data, config("exprsft", beta=0.3, **one), log=QUIET))
    assert not all(torch.equal(a[k], hot[k]) for k in a)  # a finite lambda changes the update


def test_a_missing_logged_reward_is_an_error_naming_the_count():
    data = tiny_data()
    policy = tiny_policy(data)
    data.events.rewards[train_targets(data)[[0, 3]]] = np.nan
    with pytest.raises(ValueError, match="2 training targets have no logged reward"):
        finetune(policy, data, config("exprsft", **SMALL), log=QUIET)


def test_the_beta_sweep_sweeps_lambda():
    assert REGISTRY["exprsft"].beta_means == "lambda, the temperature of exp(r / lambda)"
    s = PosttrainSettings(
        methods=("bc", "exprsft"), betas=(0.5,), method_betas={"exprsft": (1.0, 3.0)}
    )
    assert s.configurations() == [("bc", None), ("exprsft", 1.0), ("exprsft", 3.0)]
    assert s.run_config("exprsft", 3.0, seed=0, temperature=0.1).beta == 3.0
