"""`SequenceEncoder`: item ids + timestamps [B, L] -> hidden states [B, L, d].

One item-embedding table serves both as input and for scoring (`item_embeddings`), so a hidden
state h_t is scored against every item by a dot product of L2-normalised vectors.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from training.core.config import ModelConfig
from training.core.data import PAD
from training.models.hstu import HSTUBlock, time_buckets
from training.models.sasrec import SASRecBlock


class SequenceEncoder(nn.Module):
    def __init__(self, n_items: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg, self.n_items = cfg, n_items
        d = cfg.d_model
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=PAD)
        # Positions count back from the newest event (batches are right-aligned).
        self.pos_emb = nn.Embedding(cfg.max_len, d)
        nn.init.trunc_normal_(self.item_emb.weight, std=0.02)
        nn.init.trunc_normal_(self.pos_emb.weight, std=math.sqrt(1.0 / d))
        with torch.no_grad():
            self.item_emb.weight[PAD].zero_()
        self.drop = nn.Dropout(cfg.dropout)
        block = HSTUBlock if cfg.kind == "hstu" else SASRecBlock
        self.blocks = nn.ModuleList(block(cfg) for _ in range(cfg.n_blocks))
        self.norm = nn.LayerNorm(d) if cfg.kind == "sasrec" else nn.Identity()

    def item_embeddings(self) -> torch.Tensor:
        """[n_items + 1, d] the shared table (row 0 = padding)."""
        return self.item_emb.weight

    def forward(
        self,
        item_ids: torch.Tensor,
        timestamps: torch.Tensor,
        decision_ts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`decision_ts` [B, L]: when each position's decision is made, i.e. the time of the event
        it predicts (used by HSTU when `cfg.query_time == "decision"`; None = own times)."""
        B, L = item_ids.shape
        if L > self.cfg.max_len:
            raise ValueError(f"sequence length {L} > max_len {self.cfg.max_len}")
        valid = item_ids != PAD
        pos = torch.arange(self.cfg.max_len - L, self.cfg.max_len, device=item_ids.device)
        x = self.item_emb(item_ids) * math.sqrt(self.cfg.d_model) + self.pos_emb(pos)[None]
        x = self.drop(x) * valid[..., None]
        # Causal, real keys only; the diagonal stays open so padded rows never softmax over nothing.
        eye = torch.eye(L, dtype=torch.bool, device=item_ids.device)
        mask = torch.tril(torch.ones_like(eye))[None] & (valid[:, None, :] | eye)
        buckets = None
        if self.cfg.kind == "hstu":
            qt = decision_ts if self.cfg.query_time == "decision" else None
            buckets = time_buckets(timestamps, self.cfg.num_time_buckets, qt)
        for blk in self.blocks:
            x = blk(x, mask, buckets)
        return self.norm(x)
