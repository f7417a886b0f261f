"""Post-training: one loop for A-SFT and every baseline, dispatching to the method's batch step.

`finetune(policy, data, cfg)` copies the pretrained policy (the input is never modified), keeps a
frozen copy as pi_ref, and runs `cfg.steps` batches of training windows (reshuffled every pass,
seeded) through the method's step (`methods.REGISTRY`, where what beta means for each method is
written) with AdamW and gradient clipping, on `device` (mixed precision on CUDA,
training/core/device.py); batches and seeded draws are made on the CPU and moved.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from training.core.data import SequenceData
from training.core.device import MixedPrecision, on_device, resolve_device, to_device
from training.models import SequenceEncoder
from training.posttrain.advantages import EventAdvantages
from training.posttrain.batch import training_batch
from training.posttrain.config import PosttrainConfig
from training.posttrain.methods import REGISTRY, Method
from training.posttrain.methods.base import StepContext, subsample_states, train_targets
from training.reward.contract import CatalogueRewardModel


def _window_batches(n: int, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Endless batches of window indices, a fresh seeded permutation per pass."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        for i in range(0, n, batch_size):
            yield order[i : i + batch_size]


def _event_weights(
    data: SequenceData, cfg: PosttrainConfig, method: Method, advantages: EventAdvantages | None
) -> torch.Tensor | None:
    """The method's [E] per-event weights, checked to cover every training target."""
    if method.event_weights is None:
        return None
    w = method.event_weights(data, cfg, None if advantages is None else advantages.advantage)
    missing = int((~torch.isfinite(w[train_targets(data)])).sum())
    if missing:
        raise ValueError(f"{missing} training targets have no {method.weights_from} ({cfg.method})")
    return w


def _check_inputs(
    policy: SequenceEncoder,
    data: SequenceData,
    method: Method,
    reward_model: CatalogueRewardModel | None,
) -> None:
    if policy.n_items != data.n_items:
        raise ValueError(f"policy has {policy.n_items} items, data {data.n_items}: same vocab?")
    if data.max_len > policy.cfg.max_len:
        raise ValueError(f"data.max_len {data.max_len} > policy max_len {policy.cfg.max_len}")
    if len(data.windows) == 0:
        raise ValueError("the data has no training windows")
    if method.needs_reward_model:
        if reward_model is None:
            raise ValueError(f"method {method.name!r} needs a reward model")
        if reward_model.n_items != data.n_items:
            raise ValueError(f"reward model has {reward_model.n_items} items, data {data.n_items}")


def finetune(
    policy: SequenceEncoder,
    data: SequenceData,
    cfg: PosttrainConfig,
    *,
    advantages: EventAdvantages | None = None,
    reward_model: CatalogueRewardModel | None = None,
    log: Callable[[str], None] = print,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    device: str | torch.device = "cpu",
) -> SequenceEncoder:
    """Post-train a copy of `policy` with `cfg.method` on `device`; returns it in eval mode,
    on the CPU."""
    dev = resolve_device(device)
    with on_device(reward_model, dev):
        model = _finetune(policy, data, cfg, advantages, reward_model, log, on_step, dev)
    return model.eval() if dev.type == "cpu" else model.cpu().eval()


def _finetune(
    policy: SequenceEncoder,
    data: SequenceData,
    cfg: PosttrainConfig,
    advantages: EventAdvantages | None,
    reward_model: CatalogueRewardModel | None,
    log: Callable[[str], None],
    on_step: Callable[[int, dict[str, float]], None] | None,
    dev: torch.device,
) -> SequenceEncoder:
    method = REGISTRY[cfg.method]
    _check_inputs(policy, data, method, reward_model)
    weights = _event_weights(data, cfg, method, advantages)
    weights = None if weights is None else weights.to(dev)
    torch.manual_seed(cfg.seed)  # dropout
    model = copy.deepcopy(policy).to(dev).train(not method.no_dropout)
    ref = copy.deepcopy(policy).to(dev).eval().requires_grad_(False)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay
    )

    amp = MixedPrecision(dev)

    def update(loss: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        amp.backward(loss)
        if cfg.grad_clip > 0:
            amp.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        amp.step(opt)

    gen = torch.Generator().manual_seed(cfg.seed)
    ctx = StepContext(cfg, ref, data.n_items, gen, reward_model, weights)
    batches = _window_batches(len(data.windows), cfg.batch_size, cfg.seed)
    t0 = time.perf_counter()
    log(f"posttrain {cfg.method} (beta={cfg.beta}): {cfg.steps} steps of {cfg.batch_size} windows")
    for i in range(1, cfg.steps + 1):
        batch = training_batch(data, next(batches))
        if method.full_catalogue:
            batch = subsample_states(batch, cfg.max_states, gen)
        with amp.autocast():
            row: dict[str, Any] = method.step(model, to_device(batch, dev), ctx, update)
        if i % cfg.log_every == 0 or i == cfg.steps:
            shown = " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                             for k, v in row.items())  # fmt: skip
            log(f"{cfg.method} step {i}/{cfg.steps}: {shown} ({time.perf_counter() - t0:.1f}s)")
        if on_step is not None:
            on_step(i, row)
    return model
