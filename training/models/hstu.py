"""An HSTU block (Zhai et al. 2024, "Actions Speak Louder than Words"; Meta's
generative-recommenders `SequentialTransductionUnitJagged`).

Pointwise aggregated attention: SiLU(q.k + relative bias) / max_len instead of a softmax, so the
attention weights are not forced to sum to one and can carry "how much" as well as "where".
f1 projects to U, V, Q, K; the output is f2(Norm(A V) * U), added back to the residual stream.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.core.config import ModelConfig


def time_buckets(
    timestamps: torch.Tensor, num_buckets: int, decision_ts: torch.Tensor | None = None
) -> torch.Tensor:
    """[B, L, L] bucket of log|q_i - t_j| (as in the HSTU repo: log(max(|dt|, 1)) / 0.301).

    q = `decision_ts` (when each position's prediction is asked for: the next event's time, as
    in Meta's code) or, when None, the positions' own timestamps t.
    """
    ts = timestamps.to(torch.float64)  # epoch seconds do not fit float32 exactly
    qs = ts if decision_ts is None else decision_ts.to(torch.float64)
    gap = (qs[:, :, None] - ts[:, None, :]).abs().clamp(min=1.0)
    return (torch.log(gap) / 0.301).long().clamp(0, num_buckets)


class HSTUBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.n_heads, self.max_len = cfg.n_heads, cfg.max_len
        self.norm_in = nn.LayerNorm(d)
        self.f1 = nn.Linear(d, 4 * d)
        self.norm_attn = nn.LayerNorm(d)
        self.f2 = nn.Linear(d, d)
        self.drop = nn.Dropout(cfg.dropout)
        # Relative bias: one weight per offset i - j and one per log-time-gap bucket.
        self.pos_bias = nn.Parameter(torch.randn(2 * cfg.max_len - 1) * 0.02)
        self.time_bias = nn.Parameter(torch.randn(cfg.num_time_buckets + 1) * 0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, buckets: torch.Tensor) -> torch.Tensor:
        B, L, d = x.shape
        u, v, q, k = F.silu(self.f1(self.norm_in(x))).chunk(4, dim=-1)
        q, k, v = (t.view(B, L, self.n_heads, -1).transpose(1, 2) for t in (q, k, v))
        at = torch.arange(L, device=x.device)
        offset = at[:, None] - at[None, :] + self.max_len - 1
        bias = self.pos_bias[offset][None] + self.time_bias[buckets]  # [B, L, L]
        # Normalise by the fixed max_len (not the batch width) so a row's output does not
        # depend on how much padding its batch happens to have.
        attn = F.silu(q @ k.transpose(-1, -2) + bias[:, None]) / self.max_len
        attn = attn * mask[:, None]
        out = (attn @ v).transpose(1, 2).reshape(B, L, d)
        return x + self.f2(self.drop(self.norm_attn(out) * u))
