"""Post-training: one loop for A-SFT and every baseline, dispatching to the method's batch step.

`finetune(policy, data, cfg)` copies the pretrained policy (the input is never modified), keeps a
frozen copy as pi_ref, and runs `cfg.steps` batches of training windows (reshuffled every pass,
seeded) through `STEPS[cfg.method]` with AdamW and gradient clipping. What `beta` means depends on
the method:

| method | what it is | beta |
| --- | --- | --- |
| bc | continued pretraining (sampled softmax) | unused |
| asft | sampled softmax weighted by min(exp(A / beta), weight_clip) | temperature of the weights |
| rwbc | sampled softmax weighted by min(reward, weight_clip) | unused |
| dpo / ipo | pairs from pi_ref with non-overlapping ensemble intervals | DPO / IPO beta |
| cql | catalogue logits as Q, regressed to the logged reward | alpha (conservative penalty) |
| ppo | one-step PPO on r_hat, `ppo_epochs` updates per batch | KL(pi || pi_ref) coefficient |
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import torch

from training.core.data import SequenceData
from training.models import SequenceEncoder
from training.posttrain.advantages import EventAdvantages, training_batch
from training.posttrain.methods import asft, bc, cql, dpo, ppo, rwbc
from training.posttrain.methods.base import StepContext, subsample_states
from training.reward.contract import CatalogueRewardModel

METHODS: tuple[str, ...] = ("bc", "asft", "rwbc", "dpo", "ipo", "cql", "ppo")
STEPS: dict[str, Callable[..., dict[str, float]]] = {
    "bc": bc.step,
    "asft": asft.step,
    "rwbc": rwbc.step,
    "dpo": dpo.step,
    "ipo": partial(dpo.step, ipo=True),
    "cql": cql.step,
    "ppo": ppo.step,
}
NEEDS_REWARD_MODEL = ("dpo", "ipo", "ppo")
FULL_CATALOGUE = ("dpo", "ipo", "cql", "ppo")  # log pi over every item: capped by max_states
# Trained without dropout: their log pi / log pi_ref margins, PPO's ratio and the KL must start
# at exactly 0, not at dropout noise.
NO_DROPOUT = ("dpo", "ipo", "ppo")
DEFAULT_BETAS: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0)  # A-SFT sweep (advantages: std ~0.2)


_POSITIVE = ("beta", "weight_clip", "batch_size", "lr", "num_negatives", "temperature",
             "n_candidates", "max_pairs", "max_states", "ppo_clip", "ppo_epochs", "ppo_samples",
             "log_every")  # fmt: skip
_NON_NEGATIVE = ("steps", "confidence", "weight_decay", "grad_clip")


@dataclass(frozen=True)
class PosttrainConfig:
    method: str  # one of METHODS
    beta: float = 1.0  # see the module docstring: its meaning depends on the method
    weight_clip: float = 20.0  # A-SFT / RW-BC: max weight before normalisation
    self_normalise: bool = True  # divide the weighted loss by sum(w) in the batch, not the count
    steps: int = 300  # batches (PPO makes ppo_epochs optimizer updates per batch)
    batch_size: int = 64  # training windows per batch
    lr: float = 3e-4
    seed: int = 0
    num_negatives: int = 512  # sampled softmax: same scoring as pretraining
    temperature: float = 0.1  # cos / temperature, also for full-catalogue log pi
    mask_seen_negatives: bool = True
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    n_candidates: int = 8  # DPO/IPO: actions drawn from pi_ref per state
    confidence: float = 1.0  # DPO/IPO: c in mean_w - c*std_w > mean_l + c*std_l
    max_pairs: int = 256  # DPO/IPO: pairs per batch (a random subset when more qualify)
    max_states: int = 1024  # DPO/IPO, CQL, PPO: states per batch with full-catalogue log pi
    ppo_clip: float = 0.2
    ppo_epochs: int = 4  # updates per sampled batch
    ppo_samples: int = 4  # actions sampled per state
    log_every: int = 50

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}: expected one of {METHODS}")
        bad = [
            f"{k}={getattr(self, k)} (must be > 0)" for k in _POSITIVE if not getattr(self, k) > 0
        ]
        bad += [f"{k}={getattr(self, k)} (must be >= 0)" for k in _NON_NEGATIVE
                if not getattr(self, k) >= 0]  # fmt: skip
        if bad:
            raise ValueError(f"invalid post-training config for {self.method}: {', '.join(bad)}")


def beta_sweep(base: PosttrainConfig, betas: tuple[float, ...] = DEFAULT_BETAS) -> list:
    """One config per beta (A-SFT's sweep; works for any method whose beta matters)."""
    return [replace(base, beta=b) for b in betas]


def _window_batches(n: int, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Endless batches of window indices, a fresh seeded permutation per pass."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        for i in range(0, n, batch_size):
            yield order[i : i + batch_size]


def _train_targets(data: SequenceData) -> np.ndarray:
    """Flat event indices of every training target (events [start + 1, end) of each window)."""
    lo, hi = data.windows.starts + 1, data.windows.ends
    n = hi - lo
    return np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + np.repeat(lo, n)


def _event_weights(
    data: SequenceData, cfg: PosttrainConfig, advantages: EventAdvantages | None
) -> torch.Tensor | None:
    if cfg.method == "asft":
        if advantages is None:
            raise ValueError("method 'asft' needs advantages (training.posttrain.advantages)")
        if len(advantages.advantage) != len(data.events.items):
            raise ValueError(
                f"advantages cover {len(advantages.advantage)} events, the data has "
                f"{len(data.events.items)}: compute them on the same data"
            )
        w = asft.event_weights(advantages, cfg.beta, cfg.weight_clip)
    elif cfg.method == "rwbc":
        w = rwbc.reward_weights(data.events.rewards, cfg.weight_clip)
    else:
        return None
    missing = int((~torch.isfinite(w[_train_targets(data)])).sum())
    if missing:
        what = "advantage" if cfg.method == "asft" else "logged reward"
        raise ValueError(f"{missing} training targets have no {what} ({cfg.method})")
    return w


def _check_inputs(
    policy: SequenceEncoder,
    data: SequenceData,
    cfg: PosttrainConfig,
    reward_model: CatalogueRewardModel | None,
) -> None:
    if policy.n_items != data.n_items:
        raise ValueError(f"policy has {policy.n_items} items, data {data.n_items}: same vocab?")
    if data.max_len > policy.cfg.max_len:
        raise ValueError(f"data.max_len {data.max_len} > policy max_len {policy.cfg.max_len}")
    if len(data.windows) == 0:
        raise ValueError("the data has no training windows")
    if cfg.method in NEEDS_REWARD_MODEL:
        if reward_model is None:
            raise ValueError(f"method {cfg.method!r} needs a reward model")
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
) -> SequenceEncoder:
    """Post-train a copy of `policy` with `cfg.method`; returns it in eval mode."""
    _check_inputs(policy, data, cfg, reward_model)
    weights = _event_weights(data, cfg, advantages)
    torch.manual_seed(cfg.seed)  # dropout
    model = copy.deepcopy(policy).train(cfg.method not in NO_DROPOUT)
    ref = copy.deepcopy(policy).eval().requires_grad_(False)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay
    )

    def update(loss: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()

    gen = torch.Generator().manual_seed(cfg.seed)
    ctx = StepContext(cfg, ref, data.n_items, gen, reward_model, weights)
    method_step = STEPS[cfg.method]
    batches = _window_batches(len(data.windows), cfg.batch_size, cfg.seed)
    t0 = time.perf_counter()
    log(f"posttrain {cfg.method} (beta={cfg.beta}): {cfg.steps} steps of {cfg.batch_size} windows")
    for i in range(1, cfg.steps + 1):
        batch = training_batch(data, next(batches))
        if cfg.method in FULL_CATALOGUE:
            batch = subsample_states(batch, cfg.max_states, gen)
        row: dict[str, Any] = method_step(model, batch, ctx, update)
        if i % cfg.log_every == 0 or i == cfg.steps:
            shown = " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                             for k, v in row.items())  # fmt: skip
            log(f"{cfg.method} step {i}/{cfg.steps}: {shown} ({time.perf_counter() - t0:.1f}s)")
        if on_step is not None:
            on_step(i, row)
    return model.eval()
