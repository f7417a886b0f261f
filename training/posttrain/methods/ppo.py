"""One-step (bandit) PPO with the reward model as the environment, KL-regularised to pi_ref.

Per batch: pi_old = the current policy (no grad); for every state sample
`ppo_samples` actions a ~ pi_old(.|s) over the catalogue, reward r = ensemble-mean r_hat(s, a),
advantage = r - V_old(s) with V_old(s) = E_{a~pi_old} r_hat(s, a) (exact, over the catalogue).
Then `ppo_epochs` updates of
    loss = -mean min(rho * A, clip(rho, 1 - eps, 1 + eps) * A) + beta * mean_s KL(pi || pi_ref)
with rho = pi(a|s) / pi_old(a|s) and the KL exact over the catalogue. No value network: one step
has an exact V.
"""

from __future__ import annotations

from typing import Any

import torch

from training.models import SequenceEncoder
from training.posttrain.batch import score_rewards
from training.posttrain.methods.base import StepContext, Update, state_log_probs, supervised


def kl_to_ref(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """[S] KL(pi || pi_ref) per state from [S, n_items + 1] log-probs (padding column skipped)."""
    lp, lr = logp[..., 1:], ref_logp[..., 1:]
    return (lp.exp() * (lp - lr)).sum(-1)


def ppo_loss(
    logp_a: torch.Tensor,
    old_logp_a: torch.Tensor,
    advantage: torch.Tensor,
    kl: torch.Tensor,
    clip: float,
    kl_coef: float,
) -> torch.Tensor:
    """Clipped surrogate over sampled actions ([N] each) plus kl_coef * mean KL ([S])."""
    ratio = torch.exp(logp_a - old_logp_a)
    surrogate = torch.minimum(ratio * advantage, ratio.clamp(1 - clip, 1 + clip) * advantage)
    return -surrogate.mean() + kl_coef * kl.mean()


def step(model: SequenceEncoder, batch: dict[str, Any], ctx: StepContext, update: Update) -> dict:
    cfg = ctx.cfg
    with torch.no_grad():
        old_logp = state_log_probs(model, batch, cfg.temperature)
        ref_logp = state_log_probs(ctx.ref, batch, cfg.temperature)
        r = score_rewards(ctx.reward_model, batch)[:, supervised(batch)].mean(0)  # [S, n+1]
        r[:, 0] = 0.0  # the padding column is meaningless (and has probability 0)
        v_old = (old_logp.exp() * r).sum(-1)
        actions = torch.multinomial(  # by the CPU generator, then moved: [S, n]
            old_logp.exp().cpu(), cfg.ppo_samples, replacement=True, generator=ctx.generator
        ).to(old_logp.device)
        adv = r.gather(-1, actions) - v_old[:, None]
        old_a = old_logp.gather(-1, actions)
    for _ in range(cfg.ppo_epochs):
        logp = state_log_probs(model, batch, cfg.temperature)
        kl = kl_to_ref(logp, ref_logp)
        loss = ppo_loss(
            logp.gather(-1, actions).flatten(), old_a.flatten(), adv.flatten(), kl,
            cfg.ppo_clip, cfg.beta,
        )  # fmt: skip
        update(loss)
    return {"loss": loss.item(), "reward": r.gather(-1, actions).mean().item(),
            "kl": kl.mean().item()}  # fmt: skip
