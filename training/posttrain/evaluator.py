"""The study's evaluator: everything a policy is evaluated against, prepared once (the protocol:
training/posttrain/evaluate.py). The oracle is loaded here, after every policy is trained."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.core.data import SequenceData
from training.core.device import CPU, on_device, resolve_device
from training.models import SequenceEncoder
from training.posttrain import evaluate as ev
from training.posttrain.inputs import PosttrainInputs
from training.posttrain.settings import PosttrainSettings
from training.reward.contract import CatalogueRewardModel

RANKING = ("ndcg@10", "hr@10", "ndcg@50", "hr@50", "mrr")
METRICS = (*RANKING, "judge_reward", "judge_spread", "true_satisfaction", "kl", "top10_overlap")


@dataclass
class Evaluator:
    """Everything a policy is evaluated against, prepared once: the judge's scores and the
    oracle's random/best slate values at every state, and the pretrained policy's view, do not
    depend on the policy evaluated."""

    data: SequenceData
    ranking_split: Any
    states: Any
    judge_scores: np.ndarray
    reference: ev.PolicyView
    scale: ev.SatisfactionScale | None  # None: no oracle (MovieLens)
    k: int
    temperature: float
    device: torch.device = CPU  # where each policy scores (it is moved back afterwards)

    def __call__(self, policy: SequenceEncoder) -> dict[str, float]:
        with on_device(policy, self.device):
            view = ev.policy_view(policy, self.data, self.states, self.k, self.temperature)
            out = ev.ranking_metrics(policy, self.data, self.ranking_split)
        out |= ev.judge_reward(view.slates, self.judge_scores)
        if self.scale is not None:
            out["true_satisfaction"] = ev.true_satisfaction(
                view.slates, self.scale, self.data, self.states
            )
        dev = ev.deviation_between(view, self.reference)
        return out | {"kl": dev["kl"], "top10_overlap": dev[f"top{self.k}_overlap"]}


def build_evaluator(
    inputs: PosttrainInputs, judge: CatalogueRewardModel, root: Path, settings: PosttrainSettings
) -> Evaluator:
    data, k = inputs.data, settings.k
    dev = resolve_device(settings.device, "PosttrainSettings.device")
    states = ev.user_states(data, "test", settings.eval_users, seed=0)
    oracle = ev.load_oracle(root)  # evaluation only: every policy is trained by now
    with on_device(judge, dev), on_device(inputs.policy, dev):
        judge_scores = ev.judge_state_scores(judge, data, states)
        reference = ev.policy_view(inputs.policy, data, states, k, inputs.temperature)
    return Evaluator(
        data=data,
        ranking_split=ev.subsample(ev.above_median_targets(data), settings.max_ranking_targets),
        states=states,
        judge_scores=judge_scores,
        reference=reference,
        scale=ev.satisfaction_scale(oracle, data, states, k) if oracle is not None else None,
        k=k,
        temperature=inputs.temperature,
        device=dev,
    )
