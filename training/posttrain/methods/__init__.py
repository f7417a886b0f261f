"""The post-training methods, one registry entry each: what the loop and the study need to know
of a method is here and nowhere else. Adding a method = its module + one line in `REGISTRY`.

- bc: continued pretraining (sampled softmax, weight 1 per target).
- asft: the same weighted by min(exp(A / beta), weight_clip) (advantages).
- rwbc: the same weighted by the logged 1-5 reward.
- exprsft: the same weighted by min(exp((r - mean r) / lambda), weight_clip) of the logged reward.
- dpo / ipo: preference pairs from pi_ref samples whose ensemble intervals do not overlap.
- cql: discrete one-step CQL with the policy's catalogue logits as Q values.
- ppo: one-step bandit PPO, the reward model as environment, KL-regularised to pi_ref.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from training.core.data import SequenceData
from training.posttrain.config import PosttrainConfig
from training.posttrain.methods import asft, bc, cql, dpo, exprsft, ppo, rwbc
from training.posttrain.methods.base import Step

# (data, cfg, [E] advantages or None) -> [E] per-event weights (NaN where an event has none).
EventWeights = Callable[[SequenceData, PosttrainConfig, np.ndarray | None], torch.Tensor]


@dataclass(frozen=True)
class Method:
    name: str
    step: Step
    needs_reward_model: bool = False  # queries the trainer's reward ensemble while training
    beta_means: str = ""  # what beta means for the method; "" = it takes none
    # log pi over the whole catalogue per state: its states per batch are capped by max_states.
    full_catalogue: bool = False
    # Trained without dropout: its log pi / log pi_ref margins, PPO's ratio and the KL must start
    # at exactly 0, not at dropout noise.
    no_dropout: bool = False
    event_weights: EventWeights | None = None  # per-event weights of a weighted NLL
    weights_from: str = ""  # what those weights are made of (named in errors)
    needs_advantages: bool = False  # its weights come from the `advantages` asset

    @property
    def uses_beta(self) -> bool:
        return bool(self.beta_means)


REGISTRY: dict[str, Method] = {
    m.name: m
    for m in (
        Method("bc", bc.step),
        Method("asft", asft.step, beta_means="temperature of the weights exp(A / beta)",
               event_weights=asft.event_weights, weights_from="advantage",
               needs_advantages=True),
        Method("rwbc", asft.step, event_weights=rwbc.event_weights,
               weights_from="logged reward"),
        Method("exprsft", asft.step, beta_means="lambda, the temperature of exp(r / lambda)",
               event_weights=exprsft.event_weights, weights_from="logged reward"),
        Method("dpo", dpo.step, beta_means="DPO beta", needs_reward_model=True,
               full_catalogue=True, no_dropout=True),
        Method("ipo", partial(dpo.step, ipo=True), beta_means="IPO beta",
               needs_reward_model=True, full_catalogue=True, no_dropout=True),
        Method("cql", cql.step, beta_means="alpha, the conservative penalty",
               full_catalogue=True),
        Method("ppo", ppo.step, beta_means="KL(pi || pi_ref) coefficient",
               needs_reward_model=True, full_catalogue=True, no_dropout=True),
    )
}  # fmt: skip
BETA_METHODS: tuple[str, ...] = tuple(n for n, m in REGISTRY.items() if m.uses_beta)
