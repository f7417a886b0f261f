"""Training the reward ensemble: MSE on the logged 1-5 reward of each event given the history
before it, on states of the frozen policy computed once.

Members differ by their init seed and a bootstrap of the training users (Poisson(1) weights per
user: the "online" bootstrap, which lets all K members train in the same batched pass). Each
member is early-stopped on its own validation RMSE.

Device: the encoder's states are computed where the encoder is and kept on the CPU (`Targets`);
the heads train and predict where the ensemble is (training/core/device.py). Shuffles and
bootstrap weights are drawn on the CPU, so a seed means the same on every device.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch

from training.core.data import PAD, SequenceData, Split, Vocab
from training.core.device import CPU, device_of, to_device
from training.models import SequenceEncoder
from training.reward.features import FeatureTables
from training.reward.model import HeadConfig, RewardEnsemble

Log = Callable[[str], None]


@dataclass(frozen=True)
class RewardTrainConfig:
    epochs: int = 8
    patience: int = 2
    batch_size: int = 1024
    lr: float = 3e-3
    weight_decay: float = 1e-4
    bootstrap: bool = True
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Targets:
    """Supervised examples: the frozen state before each event and what happened."""

    h: torch.Tensor  # [N, d] float32, on the CPU
    users: np.ndarray  # [N] dense user ids
    items: np.ndarray  # [N] dense item ids
    ts: np.ndarray  # [N] float64 epoch seconds of the event (= the decision time)
    rewards: np.ndarray  # [N] float32 logged reward
    event_index: np.ndarray  # [N] flat event index in `SequenceData.events`

    def __len__(self) -> int:
        return len(self.rewards)

    def take(self, mask: np.ndarray) -> Targets:
        idx = np.flatnonzero(mask)
        return Targets(
            self.h[torch.from_numpy(idx)],
            self.users[idx],
            self.items[idx],
            self.ts[idx],
            self.rewards[idx],
            self.event_index[idx],
        )


TRAINER_HALF, JUDGE_HALF = 0, 1  # the users each ensemble learns from (`user_half`)


def user_half(user_ids: list[str]) -> np.ndarray:
    """0 or 1 per user id, from a hash that is stable across runs, machines and row orders: the
    trainer's ensemble learns from half TRAINER_HALF, the judge's from half JUDGE_HALF."""
    values = np.asarray(user_ids, dtype=object)
    return (pd.util.hash_array(values, categorize=False) % 2).astype(np.int8)


def dense_user_halves(vocab: Vocab) -> np.ndarray:
    """[n_users + 1] the half of every dense user id of `vocab` (-1 for padding, id 0)."""
    return np.concatenate([[-1], user_half(vocab.users.ids)])


def _targets(data: SequenceData, h: torch.Tensor, idx: np.ndarray) -> Targets:
    ev = data.events
    return Targets(
        h,
        ev.users[ev.row_of_event[idx]] if len(idx) else np.zeros(0, np.int64),
        ev.items[idx],
        ev.timestamps[idx],
        ev.rewards[idx].astype(np.float32),
        idx,
    )


@torch.no_grad()
def train_targets(
    encoder: SequenceEncoder,
    data: SequenceData,
    max_events: int | None,
    seed: int = 0,
    batch_size: int = 256,
) -> Targets:
    """States for the rewarded training targets, from the same windows post-training batches
    (`data.train_batch`). With `max_events`, a random subset of windows is encoded."""
    encoder.eval()
    dev = device_of(encoder)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.windows))
    if max_events is not None:
        per_window = data.windows.ends - data.windows.starts - 1
        keep = np.searchsorted(np.cumsum(per_window[order]), max_events, side="right") + 1
        order = np.sort(order[:keep])
    hs, idxs = [], []
    for i in range(0, len(order), batch_size):
        b = to_device(data.train_batch(order[i : i + batch_size]), dev)
        tgt = b["target_index"]
        ok = tgt >= 0
        ok[ok] = np.isfinite(data.events.rewards[tgt[ok]])
        if not ok.any():
            continue
        h = encoder(b["item_ids"], b["timestamps"], b["decision_ts"])
        hs.append(h[torch.from_numpy(ok).to(dev)].cpu())
        idxs.append(tgt[ok])
    if not idxs:
        raise ValueError("no training event has a reward: nothing to train the reward model on")
    return _targets(data, torch.cat(hs), np.concatenate(idxs))


@torch.no_grad()
def split_targets(
    encoder: SequenceEncoder,
    data: SequenceData,
    split: Split,
    context: int | None = None,
    max_events: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> Targets:
    """States for the rewarded targets of an evaluation split (valid/test).

    Targets of a user are chunked into windows of W = max_len - context consecutive events, each
    window also reading `context` earlier events, so every target sees >= min(context, its whole
    history) before it at the cost of one encoder pass per W targets (not one per target).
    """
    encoder.eval()
    ev, max_len = data.events, data.max_len
    context = max_len // 2 if context is None else context
    width_targets = max(max_len - context, 1)
    t = split.ends
    ok = np.isfinite(ev.rewards[t])
    if max_events is not None and ok.sum() > max_events:
        keep = np.random.default_rng(seed).choice(np.flatnonzero(ok), max_events, replace=False)
        ok = np.zeros_like(ok)
        ok[keep] = True
    t, s = t[ok], split.starts[ok]
    if len(t) == 0:
        return _targets(data, torch.zeros(0, encoder.cfg.d_model), t)
    order = np.argsort(t, kind="stable")
    t, s = t[order], s[order]
    # Chunk id: per user start, every W events of target position form one window.
    first = pd.Series(t).groupby(s).transform("min").to_numpy()
    chunk = (t - first) // width_targets
    key = pd.factorize(pd.MultiIndex.from_arrays([s, chunk]))[0]
    lo_t = pd.Series(t).groupby(key).transform("min").to_numpy()
    hi = pd.Series(t).groupby(key).transform("max").to_numpy()  # last target; inputs end before it
    lo = np.maximum(s, lo_t - context)
    windows = np.unique(key)
    win_lo = np.zeros(len(windows), np.int64)
    win_hi = np.zeros(len(windows), np.int64)
    win_lo[key], win_hi[key] = lo, hi
    h_out = torch.zeros(len(t), encoder.cfg.d_model)
    for i in range(0, len(windows), batch_size):
        w = windows[i : i + batch_size]
        wl, wh = win_lo[w], win_hi[w]  # inputs are events [wl, wh)
        width = int((wh - wl).max())
        idx = wh[:, None] - width + np.arange(width)[None, :]
        pad = idx < wl[:, None]
        items = np.where(pad, PAD, ev.items[np.maximum(idx, 0)])
        times = np.where(pad, 0.0, ev.timestamps[np.maximum(idx, 0)])
        decided = np.where(pad, 0.0, ev.timestamps[np.maximum(idx + 1, 0)])  # idx + 1 <= wh
        x = (torch.from_numpy(a).to(device_of(encoder)) for a in (items, times, decided))
        h = encoder(*x).cpu()
        # Target at event j reads the state after event j - 1: column width - (wh - (j - 1)).
        pos = np.flatnonzero(np.isin(key, w))
        local = np.searchsorted(w, key[pos])
        col = width - (wh[local] - (t[pos] - 1))
        h_out[torch.from_numpy(pos)] = h[torch.from_numpy(local), torch.from_numpy(col)]
    return _targets(data, h_out, t)


def standardise_inputs(model: RewardEnsemble, train: Targets) -> None:
    """Set the state standardisation from the training states."""
    with torch.no_grad():
        model.h_mean.copy_(train.h.mean(0))
        model.h_std.copy_(train.h.std(0).clamp_min(1e-6))


@torch.no_grad()
def predict(model: RewardEnsemble, t: Targets, batch_size: int = 8192) -> np.ndarray:
    """[K, N] predicted rewards of the logged events (scored on the model's device)."""
    model.eval()
    dev = device_of(model)
    out = [
        model.score_pairs(
            t.h[i : i + batch_size].to(dev),
            torch.from_numpy(t.users[i : i + batch_size]).to(dev),
            torch.from_numpy(t.items[i : i + batch_size]).to(dev),
            t.ts[i : i + batch_size],
        ).cpu()
        for i in range(0, len(t), batch_size)
    ]
    return torch.cat(out, dim=1).numpy() if out else np.zeros((model.n_members, 0), np.float32)


def bootstrap_weights(
    users: np.ndarray, members: int, seed: int, enabled: bool = True
) -> torch.Tensor:
    """[K, N] per-example weights: each member's Poisson(1) count of the example's user."""
    if not enabled:
        return torch.ones(members, len(users))
    rng = np.random.default_rng([seed, 7])
    counts = rng.poisson(1.0, size=(members, int(users.max()) + 1)).astype(np.float32)
    return torch.from_numpy(counts[:, users])


def fit_ensemble(
    model: RewardEnsemble,
    train: Targets,
    valid: Targets,
    cfg: RewardTrainConfig,
    log: Log = print,
) -> dict:
    """Train the K heads; each member keeps its best-validation-RMSE weights. Returns history."""
    if len(train) == 0:
        raise ValueError("no training targets")
    torch.manual_seed(cfg.seed)
    standardise_inputs(model, train)
    params = model.head_parameters()
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    k, dev = model.n_members, device_of(model)
    weights = bootstrap_weights(train.users, k, cfg.seed, cfg.bootstrap).to(dev)
    h, y = train.h.to(dev), torch.from_numpy(train.rewards).to(dev)
    users, items = torch.from_numpy(train.users).to(dev), torch.from_numpy(train.items).to(dev)
    best = [p.detach().clone() for p in params]
    best_rmse = np.full(k, np.inf)
    bad = np.zeros(k, dtype=int)
    history = []
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = torch.from_numpy(rng.permutation(len(train))).to(dev)
        losses = []
        for i in range(0, len(order), cfg.batch_size):
            b = order[i : i + cfg.batch_size]
            r = model.score_pairs(h[b], users[b], items[b], train.ts[b.cpu().numpy()])
            w = weights[:, b]
            loss = ((w * (r - y[b]) ** 2).sum(1) / w.sum(1).clamp_min(1.0)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item() / k)
        valid_rmse = (
            np.sqrt(((predict(model, valid) - valid.rewards[None]) ** 2).mean(1))
            if len(valid)
            else np.full(k, -float(epoch))  # no validation data: keep the latest weights
        )
        improved = valid_rmse < best_rmse
        with torch.no_grad():
            for p, bp in zip(params, best, strict=True):
                better = torch.from_numpy(improved).to(dev)
                bp[better] = p[better]
        best_rmse = np.where(improved, valid_rmse, best_rmse)
        bad = np.where(improved, 0, bad + 1)
        row = {
            "epoch": epoch,
            "loss": float(np.mean(losses)),
            "valid_rmse": float(np.mean(valid_rmse)),
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        log(
            f"reward epoch {epoch}: train mse {row['loss']:.4f}, valid rmse per member "
            + ", ".join(f"{v:.4f}" for v in valid_rmse)
        )
        if (bad >= cfg.patience).all():
            break
    with torch.no_grad():
        for p, bp in zip(params, best, strict=True):
            p.copy_(bp)
    model.eval()
    return {"history": history, "best_valid_rmse": best_rmse.tolist(), "epochs_run": len(history)}


def train_ensemble(
    name: str,
    encoder: SequenceEncoder,
    vocab: Vocab,
    tables: FeatureTables,
    train: Targets,
    valid: Targets,
    head: HeadConfig,
    cfg: RewardTrainConfig,
    log: Log = print,
) -> tuple[RewardEnsemble, dict]:
    """A new ensemble on the frozen `encoder`, its bias starting at the train mean, fitted on
    `train` and early-stopped on `valid`; its fit record (history, timing, data sizes)."""
    global_mean = float(train.rewards.mean())
    model = RewardEnsemble(encoder, vocab, tables, head, global_mean)
    if device_of(encoder) != CPU:  # trained where the encoder is
        model.to(device_of(encoder))
    t0 = time.perf_counter()
    log(f"{name}: {head.members} members on {len(train):,} events ({len(valid):,} for validation)")
    fit = fit_ensemble(model, train, valid, cfg, log=log)
    fit.update(
        seconds=round(time.perf_counter() - t0, 1),
        train_events=len(train),
        train_users=int(len(np.unique(train.users))),
        global_train_mean=global_mean,
    )
    return model, fit
