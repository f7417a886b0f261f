"""A SASRec block (Kang & McAuley 2018): softmax causal self-attention + pointwise FFN, pre-norm."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.core.config import ModelConfig


class SASRecBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.n_heads, self.p_drop = cfg.n_heads, cfg.dropout
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(
            nn.Linear(d, cfg.ffn_mult * d),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.ffn_mult * d, d),
        )
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, buckets: torch.Tensor | None = None
    ) -> torch.Tensor:
        B, L, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        q, k, v = (t.view(B, L, self.n_heads, -1).transpose(1, 2) for t in (q, k, v))
        p = self.p_drop if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None], dropout_p=p)
        x = x + self.drop(self.proj(out.transpose(1, 2).reshape(B, L, d)))
        return x + self.drop(self.ffn(self.norm2(x)))
