"""Post-training evaluation, the protocol of shared/design.md: pure functions, no Dagster.

- Ranking: the future-dated (temporal) test split restricted to targets whose logged reward is
  strictly above the median of the test rewards; full-catalogue NDCG@10/50, HR@10/50 and MRR with
  the user's already-seen items excluded (training/core/evaluate.py).
- Slate metrics use one state per test user, the history before the user's first test-period
  event (what a recommender would serve at the test cut-off): the policy's top-k with seen items
  excluded, scored by the judge ensemble (trained on data disjoint from the trainer's reward
  model), and on the simulator by the hidden true satisfaction, normalised per user between a
  random slate (0) and the oracle's best slate (1).
- Deviation from the pretrained policy on the same states: KL(pi || pi_ref) of the catalogue
  softmax (cosine scores / temperature, as in pretraining; padding excluded), and the share of
  the top-k both policies recommend.

The oracle is loaded here only (`load_oracle`), by evaluation, never by training. Policies and
the judge score on their own device (training/core/device.py); results come back to the CPU.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common.layout import DataLayout
from training.core.data import PAD, SequenceData, Split
from training.core.device import device_of, to_device
from training.core.evaluate import KS, evaluate, row_batches
from training.core.scoring import last_state_scores, mask_seen
from training.models import SequenceEncoder
from training.reward.contract import CatalogueRewardModel
from watchlogs.oracle import ARRAYS_FILE, Oracle

SplitLike = Split | str


def _as_split(data: SequenceData, split: SplitLike) -> Split:
    return data.eval_split(split) if isinstance(split, str) else split


def _rows_of(data: SequenceData, split: Split) -> np.ndarray:
    """The user row (index into data.events.users) of every example of `split`."""
    return np.searchsorted(data.events.offsets, split.ends, side="right") - 1


# ---- which examples are evaluated -----------------------------------------------------------
def above_median_targets(data: SequenceData, split: SplitLike = "test") -> Split:
    """The split's targets whose reward is strictly above the median of its known rewards.

    Strict (>), as in "above the median": on integer ratings (ML-100K, median 4) only the 5s
    are kept; ">=" would keep most targets and blur "good" with "typical". Null rewards are
    dropped.
    """
    s = _as_split(data, split)
    rewards = data.events.rewards[s.ends]
    known = ~np.isnan(rewards)
    if not known.any():
        raise ValueError("the evaluation split has no target with a known reward")
    median = float(np.median(rewards[known]))
    keep = known & (rewards > median)
    if not keep.any():
        raise ValueError(f"no target has a reward above the median ({median}) of the split")
    return Split(s.starts[keep], s.ends[keep])


def subsample(split: Split, max_n: int | None, seed: int = 0) -> Split:
    """At most `max_n` examples, drawn without replacement, kept in their original order."""
    if max_n is None or len(split) <= max_n:
        return split
    pick = np.sort(np.random.default_rng(seed).choice(len(split), max_n, replace=False))
    return Split(split.starts[pick], split.ends[pick])


def user_states(
    data: SequenceData, split: SplitLike = "test", max_users: int | None = None, seed: int = 0
) -> Split:
    """One state per user of the split: the history before the user's first target in it."""
    s = _as_split(data, split)
    _, first = np.unique(_rows_of(data, s), return_index=True)
    return subsample(Split(s.starts[first], s.ends[first]), max_users, seed)


# ---- ranking -----------------------------------------------------------------------------------
def ranking_metrics(
    policy: SequenceEncoder,
    data: SequenceData,
    split: SplitLike,
    ks: tuple[int, ...] = KS,
    batch_size: int = 256,
) -> dict[str, float]:
    """HR@k, NDCG@k, MRR over the full catalogue, seen items excluded, on `split`'s targets."""
    return evaluate(
        policy, dataclasses.replace(data, test=_as_split(data, split)), "test", ks, batch_size
    )


@dataclass
class PolicyView:
    """What the slate metrics need of a policy at a set of states, from one forward pass."""

    slates: np.ndarray  # [S, k] dense ids of the top-k, seen items excluded (PAD if none left)
    log_probs: torch.Tensor  # [S, n_items] log pi(a|s) over the catalogue (padding excluded)


@torch.no_grad()
def policy_view(
    policy: SequenceEncoder,
    data: SequenceData,
    split: SplitLike,
    k: int = 10,
    temperature: float = 0.1,
    batch_size: int = 256,
) -> PolicyView:
    """The policy's top-k slates and catalogue log-probabilities (cosine / temperature, as in
    pretraining) at every state of `split`."""
    s = _as_split(data, split)
    policy.eval()
    slates = np.zeros((len(s), k), dtype=np.int64)
    log_probs = torch.empty(len(s), data.n_items)
    for rows in row_batches(np.arange(len(s)), batch_size):
        b = to_device(data.eval_batch(s, rows), device_of(policy))
        scores = last_state_scores(policy, b["item_ids"], b["timestamps"], b["decision_ts"])
        log_probs[rows] = F.log_softmax(scores[:, 1:] / temperature, dim=1).cpu()
        val, idx = mask_seen(scores, b["seen_rows"], b["seen_items"]).topk(
            min(k, scores.shape[1]), dim=1
        )
        slates[rows, : idx.shape[1]] = torch.where(torch.isfinite(val), idx, PAD).cpu().numpy()
    return PolicyView(slates, log_probs)


def top_k(
    policy: SequenceEncoder,
    data: SequenceData,
    split: SplitLike,
    k: int = 10,
    batch_size: int = 256,
) -> np.ndarray:
    """[S, k] dense item ids of the policy's top-k per state, seen items excluded (PAD where
    fewer than k items are left)."""
    return policy_view(policy, data, split, k, batch_size=batch_size).slates


# ---- the judge --------------------------------------------------------------------------------
def state_inputs(data: SequenceData, split: Split, rows: np.ndarray) -> dict[str, torch.Tensor]:
    """What a `CatalogueRewardModel` needs for states `rows` of `split`: right-aligned history,
    user ids and decision times (the next event's time; the target's at the last position)."""
    b = data.eval_batch(split, rows)
    users = torch.from_numpy(data.events.users[_rows_of(data, split)[rows]].astype(np.int64))
    return {
        "item_ids": b["item_ids"],
        "timestamps": b["timestamps"],
        "user_ids": users,
        "decision_ts": b["decision_ts"],
    }


@torch.no_grad()
def judge_state_scores(
    judge: CatalogueRewardModel, data: SequenceData, split: SplitLike, batch_size: int = 32
) -> np.ndarray:
    """[K, S, n_items + 1] float32: every judge member's r_hat of every item at each state.

    Independent of the policy, so a study computes it once and scores every policy's slates.
    """
    s = _as_split(data, split)
    if judge.n_items != data.n_items:
        raise ValueError(f"judge scores {judge.n_items} items, the data has {data.n_items}")
    out = np.empty((judge.n_members, len(s), data.n_items + 1), dtype=np.float32)
    for rows in row_batches(np.arange(len(s)), batch_size):
        x = to_device(state_inputs(data, s, rows), device_of(judge))
        r = judge.score_catalogue(x["item_ids"], x["timestamps"], x["user_ids"], x["decision_ts"])
        out[:, rows] = r[:, :, -1].float().cpu().numpy()
    return out


def judge_reward(
    topk: np.ndarray,
    judge: CatalogueRewardModel | np.ndarray,
    data: SequenceData | None = None,
    split: SplitLike | None = None,
    batch_size: int = 32,
) -> dict[str, float]:
    """Mean over the judge's members of each member's mean r_hat of the slates, and the spread
    (std over members) of those means. `judge` is the ensemble (then `data` and `split` give the
    states) or its precomputed `judge_state_scores`."""
    if isinstance(judge, np.ndarray):
        scores = judge
    else:
        if data is None or split is None:
            raise ValueError("judge_reward needs data and split to score with a judge model")
        scores = judge_state_scores(judge, data, split, batch_size)
    if scores.shape[1] != len(topk):
        raise ValueError(f"{len(topk)} slates for {scores.shape[1]} judged states")
    valid = topk != PAD
    if not valid.any():
        raise ValueError("every slate is empty")
    picked = np.take_along_axis(scores, np.broadcast_to(topk, scores.shape[:1] + topk.shape), 2)
    per_member = (picked * valid).sum(axis=(1, 2)) / valid.sum()
    spread = float(per_member.std(ddof=1)) if len(per_member) > 1 else 0.0
    return {"judge_reward": float(per_member.mean()), "judge_spread": spread}


# ---- the simulator's ground truth (evaluation only) --------------------------------------------
def load_oracle(root: Path) -> Oracle | None:
    """The simulator's hidden true satisfaction, or None where the source has none (MovieLens)."""
    directory = DataLayout(root).oracle
    return Oracle.load(directory) if (directory / ARRAYS_FILE).exists() else None


def seen_items_by_user(data: SequenceData, split: SplitLike) -> dict[str, set[str]]:
    """Per user (one state each), the ids of the items seen before the state: what a slate
    may not contain, for the oracle's best and random slates as for the policy's."""
    s = _as_split(data, split)
    users = data.vocab.users.decode(data.events.users[_rows_of(data, s)])
    if len(set(users)) != len(users):
        raise ValueError("true satisfaction needs one state per user (see user_states)")
    items = np.asarray(data.vocab.items.ids, dtype=object)
    seen = (items[data.events.items[lo:hi] - 1] for lo, hi in zip(s.starts, s.ends, strict=True))
    return dict(zip(users, map(set, seen), strict=True))


@dataclass
class SatisfactionScale:
    """Per state, the oracle's random-slate (0) and best-slate (1) values of size k, with the
    user's seen titles excluded: independent of the policy, so computed once per study."""

    oracle: Oracle
    users: list[str]
    random: np.ndarray  # [S]
    best: np.ndarray  # [S]
    k: int


def satisfaction_scale(
    oracle: Oracle,
    data: SequenceData,
    split: SplitLike,
    k: int = 10,
    exclude: dict[str, set[str]] | None = None,
) -> SatisfactionScale:
    s = _as_split(data, split)
    exclude = exclude if exclude is not None else seen_items_by_user(data, s)
    users = data.vocab.users.decode(data.events.users[_rows_of(data, s)])
    rand = oracle.random_slate_value(users, k, exclude)
    return SatisfactionScale(oracle, users, rand, oracle.best_slate_value(users, k, exclude), k)


def true_satisfaction(
    topk: np.ndarray,
    oracle: Oracle | SatisfactionScale,
    data: SequenceData,
    split: SplitLike,
    exclude: dict[str, set[str]] | None = None,
) -> float:
    """Mean over states of the slate's normalised true satisfaction: 0 = a random slate of
    unseen titles, 1 = the oracle's best unseen slate of the same size (Oracle's definition;
    states where best = random are skipped)."""
    s = _as_split(data, split)
    if len(topk) != len(s):
        raise ValueError(f"{len(topk)} slates for {len(s)} states")
    scale = (
        oracle
        if isinstance(oracle, SatisfactionScale)
        else satisfaction_scale(oracle, data, s, topk.shape[1], exclude)
    )
    if scale.k != topk.shape[1] or len(scale.users) != len(s):
        raise ValueError("the satisfaction scale was computed for other states or slate size")
    valid = topk != PAD
    items = np.asarray([""] + data.vocab.items.ids, dtype=object)
    users = np.repeat(np.asarray(scale.users, dtype=object), valid.sum(axis=1))
    sat = scale.oracle.satisfaction(users, items[topk[valid]])
    owner = np.repeat(np.arange(len(topk)), valid.sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.bincount(owner, weights=sat, minlength=len(topk)) / valid.sum(axis=1)
        span = scale.best - scale.random
        normalised = (value - scale.random) / np.where(span > 1e-12, span, np.nan)
    finite = np.isfinite(normalised)
    return float(normalised[finite].mean()) if finite.any() else float("nan")


# ---- deviation from the pretrained policy -----------------------------------------------------
def deviation_between(view: PolicyView, reference: PolicyView) -> dict[str, float]:
    """Mean over states of KL(pi || pi_ref) over the catalogue and of the top-k overlap."""
    logp, logr = view.log_probs, reference.log_probs
    kl = (logp.exp() * (logp - logr)).sum(dim=1).clamp_min(0)
    a, b = torch.from_numpy(view.slates), torch.from_numpy(reference.slates)
    k = a.shape[1]
    overlap = (a[:, :, None] == b[:, None, :]).any(-1).sum(-1).double() / k
    return {"kl": float(kl.mean()), f"top{k}_overlap": float(overlap.mean())}


__all__ = [
    "above_median_targets",
    "deviation_between",
    "policy_view",
    "satisfaction_scale",
    "judge_reward",
    "judge_state_scores",
    "load_oracle",
    "ranking_metrics",
    "seen_items_by_user",
    "subsample",
    "top_k",
    "true_satisfaction",
    "user_states",
]
