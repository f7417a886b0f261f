"""DPO and IPO with preference pairs chosen by the reward-model ensemble.

Pairs: for each state of the batch, `n_candidates` actions are drawn from pi_ref (without
replacement); the candidate with the highest lower bound mean - c*std is the winner, the one with
the lowest upper bound mean + c*std the loser, and the pair is kept only where the two intervals
do not overlap (lower_w > upper_l): rejection sampling on the ensemble's confidence.
With h = (log pi(a_w) - log pi_ref(a_w)) - (log pi(a_l) - log pi_ref(a_l)) (log pi over the full
catalogue): DPO = -log sigmoid(beta * h), IPO = (h - 1 / (2 beta))^2, averaged over pairs.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from training.models import SequenceEncoder
from training.posttrain.batch import ensemble_mean_std, score_rewards
from training.posttrain.methods.base import StepContext, Update, state_log_probs, supervised


def preference_margin(
    logp_w: torch.Tensor, logp_l: torch.Tensor, ref_w: torch.Tensor, ref_l: torch.Tensor
) -> torch.Tensor:
    return (logp_w - ref_w) - (logp_l - ref_l)


def dpo_loss(h: torch.Tensor, beta: float) -> torch.Tensor:
    return -F.logsigmoid(beta * h).mean()


def ipo_loss(h: torch.Tensor, beta: float) -> torch.Tensor:
    return ((h - 1.0 / (2.0 * beta)) ** 2).mean()


def select_pairs(
    mean: torch.Tensor, std: torch.Tensor, confidence: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For [S, C] candidate rewards: winner and loser column per state and whether their
    intervals [mean - c*std, mean + c*std] do not overlap (winner's strictly above)."""
    lower, upper = mean - confidence * std, mean + confidence * std
    win, lose = lower.argmax(-1), upper.argmin(-1)
    keep = lower.gather(-1, win[:, None])[:, 0] > upper.gather(-1, lose[:, None])[:, 0]
    return win, lose, keep


def sample_candidates(
    ref_logp: torch.Tensor, n_candidates: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """[S, C] distinct actions per state drawn from pi_ref ([S, n_items + 1] log-probs), by
    the CPU `generator` (a seed draws the same on every device)."""
    probs = ref_logp.exp()
    c = min(n_candidates, int((probs[0] > 0).sum()))
    draw = torch.multinomial(probs.cpu(), c, replacement=False, generator=generator)
    return draw.to(probs.device)


def pairs_from_candidates(
    cand: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, confidence: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(state, a_w, a_l) for the states whose best and worst candidates ([S, C] ids with their
    ensemble mean and std) have disjoint intervals."""
    win, lose, keep = select_pairs(mean, std, confidence)
    states = torch.arange(len(cand), device=cand.device)[keep]
    return states, cand[states, win[keep]], cand[states, lose[keep]]


def step(
    model: SequenceEncoder,
    batch: dict[str, Any],
    ctx: StepContext,
    update: Update,
    ipo: bool = False,
) -> dict:
    cfg = ctx.cfg
    with torch.no_grad():
        ref_logp = state_log_probs(ctx.ref, batch, cfg.temperature)
        cand = sample_candidates(ref_logp, cfg.n_candidates, ctx.generator)  # [S, C]
        # The ensemble's scores of the candidates only: [K, B, L, C] -> [K, S, C].
        scores, mask = score_rewards(ctx.reward_model, batch), supervised(batch)
        at = torch.zeros(*mask.shape, cand.shape[1], dtype=torch.long, device=mask.device)
        at[mask] = cand
        mean, std = ensemble_mean_std(
            scores.gather(-1, at.expand(len(scores), -1, -1, -1))[:, mask]
        )
        s, a_w, a_l = pairs_from_candidates(cand, mean, std, cfg.confidence)
        if len(s) > cfg.max_pairs:
            pick = torch.randperm(len(s), generator=ctx.generator)[: cfg.max_pairs].to(s.device)
            s, a_w, a_l = s[pick], a_w[pick], a_l[pick]
    if len(s) == 0:  # no pair the ensemble is confident about: nothing to learn from this batch
        return {"loss": float("nan"), "pairs": 0}
    logp = state_log_probs(model, batch, cfg.temperature, states=s)  # [n_pairs, n_items + 1]
    pair = torch.arange(len(s), device=s.device)
    h = preference_margin(logp[pair, a_w], logp[pair, a_l], ref_logp[s, a_w], ref_logp[s, a_l])
    loss = (ipo_loss if ipo else dpo_loss)(h, cfg.beta)
    update(loss)
    return {"loss": loss.item(), "pairs": len(s), "margin": h.mean().item()}
