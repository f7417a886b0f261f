"""One post-training run's configuration: the method, its beta and the loop's knobs.

The study-level values (steps, batch size, learning rate, weight clip, self-normalisation) have
no default here: the study passes them from `PosttrainSettings` (training/posttrain/settings.py),
where their defaults and docs live. What beta means for each method: `methods.REGISTRY`.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

from common.settings import check_choices

MethodName = Literal["bc", "asft", "rwbc", "exprsft", "dpo", "ipo", "cql", "ppo"]
METHOD_NAMES: tuple[str, ...] = typing.get_args(MethodName)

_POSITIVE = ("beta", "weight_clip", "batch_size", "lr", "num_negatives", "temperature",
             "n_candidates", "max_pairs", "max_states", "ppo_clip", "ppo_epochs", "ppo_samples",
             "log_every")  # fmt: skip
_NON_NEGATIVE = ("steps", "confidence", "weight_decay", "grad_clip")


@dataclass(frozen=True)
class PosttrainConfig:
    method: MethodName
    weight_clip: float  # A-SFT / RW-BC / Exp-RSFT: max weight before normalisation
    self_normalise: bool  # divide the weighted loss by sum(w) in the batch, not the count
    steps: int  # batches (PPO makes ppo_epochs optimizer updates per batch)
    batch_size: int  # training windows per batch
    lr: float
    beta: float = 1.0  # its meaning depends on the method (methods.REGISTRY)
    seed: int = 0
    num_negatives: int = 512  # sampled softmax: same scoring as pretraining
    temperature: float = 0.1  # cos / temperature, also for full-catalogue log pi
    mask_seen_negatives: bool = True
    # Where "seen" looks when masking negatives, as in pretraining (training/core/losses.py):
    # "window" = the training window's inputs; "history" = the user's whole history before it.
    seen_scope: Literal["window", "history"] = "window"
    # "bfloat16": the full softmax's logits matmul in bfloat16 where the CPU has it natively.
    logits_matmul: Literal["float32", "bfloat16"] = "float32"
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
        if self.method not in METHOD_NAMES:
            raise ValueError(f"unknown method {self.method!r}: expected one of {METHOD_NAMES}")
        check_choices(self)
        bad = [
            f"{k}={getattr(self, k)} (must be > 0)" for k in _POSITIVE if not getattr(self, k) > 0
        ]
        bad += [f"{k}={getattr(self, k)} (must be >= 0)" for k in _NON_NEGATIVE
                if not getattr(self, k) >= 0]  # fmt: skip
        if bad:
            raise ValueError(f"invalid post-training config for {self.method}: {', '.join(bad)}")
