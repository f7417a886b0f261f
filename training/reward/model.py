"""The reward-model ensemble: K shallow two-tower heads on the frozen pretrained policy.

r_hat_k(s_t, i) = 1 + 4 sigmoid(g_k(h_t, user features) . f_k(e_i, item features) + biases)

- h_t [d]: the pretrained `SequenceEncoder`'s state after position t (frozen, computed once);
- e_i [d]: the policy's item-embedding row (frozen);
- features: the Feast reward statistics as of the decision's day. They are time-varying, so the
  model carries dense per-day tables (`FeatureTables`, retrieved point-in-time once for every
  (entity, day) by training/reward/features.py) and never needs Feast or a later row to score.

Because the state and item towers only meet in a dot product, scoring the whole catalogue is a
matrix product per day (`score_catalogue`, the `CatalogueRewardModel` contract of
training/reward/contract.py). The K heads are stored batched (every parameter has a leading K axis),
so the ensemble trains and scores in one pass; members differ by seed and bootstrap sample.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.core.config import ModelConfig
from training.core.data import PAD, Vocab
from training.core.device import state_on_cpu
from training.models import SequenceEncoder
from training.reward.features import FeatureTables, normalise_features

# Most gathered candidate factors (floats) held at once by `score_items` (~200 MB).
CANDIDATE_CHUNK = 50_000_000
MODEL_FILE = "reward.pt"
FEATURES_FILE = "features.npz"
VOCAB_FILE = "vocab.json"
META_FILE = "meta.json"


# ---- the ensemble -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadConfig:
    members: int = 5
    embed_dim: int = 32  # m: width of the two towers' meeting point
    hidden: int = 64
    seed: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class BatchedMLP(nn.Module):
    """K independent 2-layer MLPs run together: x [K, N, d_in] (or [N, d_in]) -> [K, N, out]."""

    def __init__(
        self, k: int, d_in: int, hidden: int, d_out: int, seeds: list[int], out_scale: float = 1.0
    ) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(k, d_in, hidden))
        self.b1 = nn.Parameter(torch.zeros(k, hidden))
        self.w2 = nn.Parameter(torch.empty(k, hidden, d_out))
        self.b2 = nn.Parameter(torch.zeros(k, d_out))
        with torch.no_grad():
            for j, seed in enumerate(seeds):  # each member's init comes from its own seed
                gen = torch.Generator().manual_seed(seed)
                self.w1[j].uniform_(-1, 1, generator=gen).mul_(math.sqrt(3.0 / d_in))
                self.w2[j].uniform_(-1, 1, generator=gen).mul_(out_scale * math.sqrt(3.0 / hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.expand(self.w1.shape[0], *x.shape)
        hidden = torch.nn.functional.silu(torch.baddbmm(self.b1[:, None], x, self.w1))
        return torch.baddbmm(self.b2[:, None], hidden, self.w2)


class RewardEnsemble(nn.Module):
    """Implements `training.reward.contract.CatalogueRewardModel`."""

    def __init__(
        self,
        encoder: SequenceEncoder,
        vocab: Vocab,
        tables: FeatureTables,
        cfg: HeadConfig | None = None,
        global_mean: float = 3.0,
    ) -> None:
        super().__init__()
        cfg = cfg or HeadConfig()
        if len(vocab.items) != encoder.n_items:
            raise ValueError("vocab and encoder disagree on the catalogue size")
        if (
            tables.item.shape[1] != encoder.n_items + 1
            or tables.user.shape[1] != len(vocab.users) + 1
        ):
            raise ValueError("feature tables are not indexed by this vocab's dense ids")
        self.cfg, self.vocab, self.tables = cfg, vocab, tables
        self.n_members, self.n_items = cfg.members, encoder.n_items
        self.encoder = encoder.eval()
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        d = encoder.cfg.d_model
        seeds = [cfg.seed * 1000 + j for j in range(cfg.members)]
        fu, fi = 2 * len(tables.user_names), 2 * len(tables.item_names)
        # Small initial outputs and a 1/sqrt(m) dot: an untrained member predicts about the
        # global mean instead of noise several logits wide.
        self.dot_scale = 1.0 / math.sqrt(cfg.embed_dim)
        m1 = cfg.embed_dim + 1
        self.state_tower = BatchedMLP(cfg.members, d + fu, cfg.hidden, m1, seeds, 0.3)
        self.item_tower = BatchedMLP(
            cfg.members, d + fi, cfg.hidden, m1, [s + 500 for s in seeds], 0.3
        )
        logit = math.log((global_mean - 1.0) / (5.0 - global_mean))
        self.bias = nn.Parameter(torch.full((cfg.members,), logit))
        # Input standardisation of the frozen states and embeddings (set from training data).
        self.register_buffer("h_mean", torch.zeros(d))
        self.register_buffer("h_std", torch.ones(d))
        emb = encoder.item_embeddings().detach()
        self.register_buffer("e_mean", emb[1:].mean(0))
        self.register_buffer("e_std", emb[1:].std(0).clamp_min(1e-6))
        self._tower_cache: dict[int, torch.Tensor] = {}
        self._user_tab = torch.from_numpy(normalise_features(tables.user, tables.user_names))
        self._item_tab = torch.from_numpy(normalise_features(tables.item, tables.item_names))

    # -- pieces -----------------------------------------------------------------------------------
    def head_parameters(self) -> list[nn.Parameter]:
        """Every trainable parameter; each has the member axis first."""
        return [p for p in self.parameters() if p.requires_grad]

    @torch.no_grad()
    def encode(
        self,
        item_ids: torch.Tensor,
        timestamps: torch.Tensor,
        decision_ts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """[B, L] history -> [B, L, d] frozen states (`decision_ts` as in the encoder)."""
        return self.encoder(item_ids, timestamps, decision_ts)

    def day_index(self, ts: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Row of the per-day tables of each time, on the model's device."""
        ts = ts.cpu().numpy() if isinstance(ts, torch.Tensor) else ts
        return torch.from_numpy(self.tables.day_index(ts)).to(self.bias.device)

    def state_out(self, h: torch.Tensor, user_feats: torch.Tensor) -> torch.Tensor:
        """h [N, d], normalised user features [N, Fu] -> [K, N, m + 1] (last column = bias)."""
        x = torch.cat([(h - self.h_mean) / self.h_std, user_feats], dim=-1)
        return self.state_tower(x)

    def item_out(self, items: torch.Tensor, item_feats: torch.Tensor) -> torch.Tensor:
        """dense item ids [M], normalised item features [M, Fi] -> [K, M, m + 1]."""
        e = self.encoder.item_embeddings().detach()[items]
        x = torch.cat([(e - self.e_mean) / self.e_std, item_feats], dim=-1)
        return self.item_tower(x)

    def _pair_logit(self, g: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        dot = (g[..., :-1] * f[..., :-1]).sum(-1) * self.dot_scale
        return dot + g[..., -1] + f[..., -1] + self.bias[:, None]

    def _squash(self, z: torch.Tensor) -> torch.Tensor:
        return 1.0 + 4.0 * torch.sigmoid(z)

    def score_pairs(
        self, h: torch.Tensor, users: torch.Tensor, items: torch.Tensor, decision_ts: np.ndarray
    ) -> torch.Tensor:
        """[K, N] reward of `items[n]` after state `h[n]` of user `users[n]` at decision_ts[n]."""
        day = self.day_index(decision_ts)
        g = self.state_out(h, self._user_tab[day, users])
        f = self.item_out(items, self._item_tab[day, items])
        z = self._pair_logit(g, f)
        return self._squash(z)

    def score_with_features(
        self, h: torch.Tensor, user_raw: np.ndarray, items: torch.Tensor, item_raw: np.ndarray
    ) -> torch.Tensor:
        """Online path: one state h [d], raw user features [F_user], candidates [C] with raw item
        features [C, F_item] (as served by the online store) -> [K, C]."""
        dev = self.bias.device
        uf = torch.from_numpy(normalise_features(user_raw, self.tables.user_names)).to(dev)
        itf = torch.from_numpy(normalise_features(item_raw, self.tables.item_names)).to(dev)
        g = self.state_out(h[None], uf[None])  # [K, 1, m+1]
        f = self.item_out(items, itf)  # [K, C, m+1]
        z = self._pair_logit(g, f)
        return self._squash(z)

    # -- the contract -----------------------------------------------------------------------------
    def _state_factors(
        self,
        item_ids: torch.Tensor,
        timestamps: torch.Tensor,
        user_ids: torch.Tensor,
        decision_ts: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The states' augmented factors [K, B*L, m+2] and each position's day row [B*L]:
        [g * scale, g_bias + member bias, 1] . [f, 1, f_bias] = the logit of `_pair_logit`, so
        the dot, both tower biases and the member bias are one product with `catalogue_factors`."""
        B, L = item_ids.shape
        h = self.encode(item_ids, timestamps, decision_ts).reshape(B * L, -1)
        day = self.day_index(decision_ts.reshape(-1))
        users = user_ids[:, None].expand(B, L).reshape(-1)
        g = self.state_out(h, self._user_tab[day, users])  # [K, BL, m+1]
        ones = torch.ones_like(g[..., -1:])
        g_aug = torch.cat(
            [g[..., :-1] * self.dot_scale, g[..., -1:] + self.bias[:, None, None], ones], dim=-1
        )
        return g_aug, day

    def _catalogue_logits_by_day(
        self,
        item_ids: torch.Tensor,
        timestamps: torch.Tensor,
        user_ids: torch.Tensor,
        decision_ts: torch.Tensor,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(rows, z) per distinct decision day: rows [n] of the flattened B*L positions and the
        members' logits z [K, n, N+1] of every catalogue item after them, one bmm per day.
        Positions whose input is padding are left out (their scores are meaningless)."""
        g_aug, day = self._state_factors(item_ids, timestamps, user_ids, decision_ts)
        real = (item_ids.reshape(-1) != PAD).to(day.device)
        for d in torch.unique(day[real]).tolist():
            rows = torch.nonzero((day == d) & real).squeeze(1)
            yield rows, torch.bmm(g_aug[:, rows], self.catalogue_factors(d).transpose(1, 2))

    @torch.no_grad()
    def score_catalogue(
        self,
        item_ids: torch.Tensor,
        timestamps: torch.Tensor,
        user_ids: torch.Tensor,
        decision_ts: torch.Tensor,
    ) -> torch.Tensor:
        """[K, B, L, n_items + 1]: see `CatalogueRewardModel.score_catalogue`."""
        B, L = item_ids.shape
        out = torch.empty(self.n_members, B * L, self.n_items + 1, device=self.bias.device)
        out[:, item_ids.reshape(-1) == PAD] = 0.0  # not scored
        for rows, z in self._catalogue_logits_by_day(item_ids, timestamps, user_ids, decision_ts):
            out[:, rows] = torch.sigmoid_(z).mul_(4.0).add_(1.0)  # _squash, in place
        return out.reshape(self.n_members, B, L, self.n_items + 1)

    @torch.no_grad()
    def score_catalogue_mean(
        self,
        item_ids: torch.Tensor,
        timestamps: torch.Tensor,
        user_ids: torch.Tensor,
        decision_ts: torch.Tensor,
    ) -> torch.Tensor:
        """[B, L, n_items + 1] = score_catalogue(...).mean(0), one member at a time: the
        [K, B, L, N] tensor is never held, which is what makes advantages over the catalogue
        cheap (`CatalogueRewardModel.score_catalogue_mean`)."""
        B, L = item_ids.shape
        out = torch.empty(B * L, self.n_items + 1, device=self.bias.device)
        out[item_ids.reshape(-1) == PAD] = 0.0  # not scored
        for rows, z in self._catalogue_logits_by_day(item_ids, timestamps, user_ids, decision_ts):
            acc = torch.sigmoid_(z[0])
            for k in range(1, self.n_members):
                acc += torch.sigmoid_(z[k])
            out[rows] = acc.mul_(4.0 / self.n_members).add_(1.0)  # mean of 1 + 4 sigmoid
        return out.reshape(B, L, self.n_items + 1)

    @torch.no_grad()
    def catalogue_factors(self, day: int) -> torch.Tensor:
        """[f, 1, f_bias] of the whole catalogue on a day row, [K, N+1, m+2]; cached while the
        model is in eval mode (~2.3 MB per day for K=5, 3.5k titles), dropped by `train()`."""
        if not self.training and day in self._tower_cache:
            return self._tower_cache[day]
        items = torch.arange(self.n_items + 1, device=self.bias.device)
        f = self.item_out(items, self._item_tab[day])  # [K, N+1, m+1]
        factors = torch.cat([f[..., :-1], torch.ones_like(f[..., -1:]), f[..., -1:]], dim=-1)
        if not self.training:
            self._tower_cache[day] = factors
        return factors

    def train(self, mode: bool = True) -> RewardEnsemble:
        self._tower_cache.clear()  # weights may change: cached tower outputs would be stale
        return super().train(mode)

    def _apply(self, fn, recurse=True):  # noqa: ANN001 - nn.Module's: .to() / .cuda() / .cpu()
        # The feature tables are plain attributes (features.npz holds them, not the state
        # dict), so they move with the model here; cached tower outputs would stay behind.
        self._tower_cache.clear()
        self._user_tab, self._item_tab = fn(self._user_tab), fn(self._item_tab)
        return super()._apply(fn, recurse)

    def load_state_dict(self, *args, **kwargs):  # noqa: D102 - same as nn.Module's
        self._tower_cache.clear()
        return super().load_state_dict(*args, **kwargs)

    @torch.no_grad()
    def score_items(
        self,
        item_ids: torch.Tensor,
        timestamps: torch.Tensor,
        user_ids: torch.Tensor,
        decision_ts: torch.Tensor,
        candidates: torch.Tensor,
    ) -> torch.Tensor:
        """[K, B, L, C] rewards of `candidates` [B, L, C] (dense item ids) after each position.
        The state tower runs once per position and the item tower once per title and day (the
        cached `catalogue_factors`); each candidate costs one (m+2)-wide dot per member, so C
        candidates cost C/N of scoring the catalogue. Rows go in chunks of at most
        `CANDIDATE_CHUNK` gathered factors, so memory does not grow with B * L * C."""
        B, L, C = candidates.shape
        g_aug, day = self._state_factors(item_ids, timestamps, user_ids, decision_ts)
        cands = candidates.reshape(B * L, C).to(g_aug.device)
        out = torch.empty(self.n_members, B * L, C, device=g_aug.device)
        step = max(1, CANDIDATE_CHUNK // (self.n_members * C * g_aug.shape[-1]))
        for d in torch.unique(day).tolist():
            factors = self.catalogue_factors(d)  # [K, N+1, m+2]
            day_rows = torch.nonzero(day == d).squeeze(1)
            for rows in day_rows.split(step):
                f = factors[:, cands[rows]]  # [K, n, C, m+2]
                out[:, rows] = torch.matmul(f, g_aug[:, rows, :, None])[..., 0]
        return out.sigmoid_().mul_(4.0).add_(1.0).reshape(self.n_members, B, L, C)


# ---- persistence --------------------------------------------------------------------------------


def save_reward_ensemble(model: RewardEnsemble, directory: Path, meta: dict | None = None) -> Path:
    """Everything needed to score without the policy checkpoint: heads, the frozen encoder, its
    vocab and the per-day feature tables."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # On the CPU (a no-op there) whatever device trained it, so it loads anywhere.
    heads = {k: v.cpu() for k, v in model.state_dict().items() if not k.startswith("encoder.")}
    torch.save(
        {
            "heads": heads,
            "head_config": model.cfg.to_dict(),
            "encoder": state_on_cpu(model.encoder.state_dict()),
            "encoder_config": model.encoder.cfg.to_dict(),
            "n_items": model.n_items,
        },
        directory / MODEL_FILE,
    )
    model.tables.save(directory / FEATURES_FILE)
    model.vocab.save_json(directory / VOCAB_FILE)
    (directory / META_FILE).write_text(json.dumps(meta or {}, indent=2, default=str) + "\n")
    return directory


def load_reward_ensemble(directory: Path) -> RewardEnsemble:
    """A saved ensemble, in eval mode."""
    directory = Path(directory)
    if not (directory / MODEL_FILE).exists():
        raise FileNotFoundError(f"no reward ensemble in {directory} (missing {MODEL_FILE})")
    ck = torch.load(directory / MODEL_FILE, weights_only=True, map_location="cpu")
    encoder = SequenceEncoder(ck["n_items"], ModelConfig.from_dict(ck["encoder_config"]))
    encoder.load_state_dict(ck["encoder"])
    model = RewardEnsemble(
        encoder,
        Vocab.load_json(directory / VOCAB_FILE),
        FeatureTables.load(directory / FEATURES_FILE),
        HeadConfig(**ck["head_config"]),
    )
    model.load_state_dict({**ck["heads"], **{f"encoder.{k}": v for k, v in ck["encoder"].items()}})
    return model.eval()


def load_meta(directory: Path) -> dict:
    path = Path(directory) / META_FILE
    return json.loads(path.read_text()) if path.exists() else {}
