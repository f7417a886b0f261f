"""BC: continued pretraining from the pretrained policy (every target weighs one).

The loss is pretraining's sampled softmax, -mean_p log pi(a_p|s_p); A-SFT with beta = inf.
"""

from __future__ import annotations

from typing import Any

from training.models import SequenceEncoder
from training.posttrain.methods.base import StepContext, Update, sampled_nll


def step(model: SequenceEncoder, batch: dict[str, Any], ctx: StepContext, update: Update) -> dict:
    loss = sampled_nll(model, batch, ctx)
    update(loss)
    return {"loss": loss.item()}
