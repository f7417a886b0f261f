"""Advantages of the logged actions: A = r_hat(s, a) - V(s), V(s) = E_{a ~ pi_ref(.|s)} r_hat(s, a).

For every training target (the next event after each position of each training window; of at most
`max_windows` windows, sampled once, seeded, where there are more) the
reward-model ensemble scores the whole catalogue, and the pretrained policy gives pi_ref(.|s) =
softmax over the catalogue of cos(h_s, e_a) / temperature (the scoring of pretraining and
evaluation; padding excluded). r_hat of the logged action and V(s) come from the same row, so the
policy-weighted advantage sum_a pi_ref(a|s) (r_hat(s, a) - V(s)) of every state is zero up to
float error: `state_weighted_advantage` records it as a check. Everything is batched over
windows and positions; no Python loop touches an event.

Options: `lcb` > 0 uses the ensemble's lower confidence bound r_hat = mean - lcb * std (for the
logged action and inside V alike); `top_k` restricts V's expectation to the policy's top-k items,
renormalised (an approximation for large catalogues; the zero-sum check still holds): the reward
model then scores those k titles only, so its cost per target no longer grows with the catalogue
(the policy's softmax still spans it). `max_scores_per_call` bounds the [B, L, titles] tensors:
on a large catalogue fewer windows go per call, so memory stays flat.
`device` (settings.device): where the policy and the ensemble score, in float32 (V(s) is a sum
over the catalogue); the results come back to the CPU and the models where they were.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from training.core.data import PAD, SequenceData, Split, seeded_subset
from training.core.device import on_device, resolve_device, to_device
from training.core.scoring import catalogue_logits
from training.models import SequenceEncoder
from training.posttrain.batch import ensemble_mean_std, score_rewards, training_batch
from training.posttrain.settings import AdvantagesSettings
from training.reward.contract import CatalogueRewardModel

FIELDS = ("r_hat_mean", "r_hat_std", "v", "advantage", "state_weighted_advantage")
# Targets per [targets, titles] pass of the catalogue path (see `_over_catalogue`).
ROWS_PER_PASS = 256


@dataclass
class EventAdvantages:
    """Aligned to `data.events` flat indices ([E]); NaN for events that are not training targets.

    `advantage` = r_hat - v where r_hat = r_hat_mean - lcb * r_hat_std (lcb = 0 by default).
    """

    r_hat_mean: np.ndarray
    r_hat_std: np.ndarray
    v: np.ndarray
    advantage: np.ndarray
    state_weighted_advantage: np.ndarray  # sum_a pi(a|s) (r_hat(s,a) - V(s)) for the state (~0)


def _check_catalogues(policy: SequenceEncoder, reward_model: CatalogueRewardModel, data) -> None:
    if not policy.n_items == reward_model.n_items == data.n_items:
        raise ValueError(
            f"catalogue sizes differ: policy {policy.n_items}, reward model "
            f"{reward_model.n_items}, data {data.n_items} (use the policy's vocab everywhere)"
        )


@torch.no_grad()
def compute_advantages(
    policy: SequenceEncoder,
    reward_model: CatalogueRewardModel,
    data: SequenceData,
    settings: AdvantagesSettings,
    *,
    temperature: float = 0.1,
    log: Callable[[str], None] = print,
) -> EventAdvantages:
    """r_hat, V and A for every training target of `data` (see the module docstring), scored
    with the pretrained policy's `temperature`, on `settings.device`."""
    dev = resolve_device(settings.device, "AdvantagesSettings.device")
    with on_device(policy, dev), on_device(reward_model, dev):
        return _advantages(policy, reward_model, data, settings, temperature, log, dev)


def scored_windows(n: int, max_windows: int | None) -> np.ndarray:
    """The training windows whose targets get advantages, ascending: every one, or a seeded
    sample of `max_windows` (the same sample on every run of the same data)."""
    return seeded_subset(n, max_windows)


def with_scored_windows(data: SequenceData, adv: EventAdvantages) -> SequenceData:
    """`data` with only the training windows that have advantages (post-training's pool when
    `max_windows` sampled them); `data` itself when every window has them."""
    scored = np.concatenate([[0], np.cumsum(~np.isnan(adv.advantage))])
    has = scored[data.windows.ends] > scored[data.windows.starts + 1]  # a target in [s + 1, e)
    if has.all():
        return data
    return replace(data, windows=Split(data.windows.starts[has], data.windows.ends[has]))


def states_per_call(settings: AdvantagesSettings, max_len: int, n_items: int) -> int:
    """Windows per call: `batch_size`, fewer where a [B, L, titles] score tensor would exceed
    `max_scores_per_call` (so memory stays flat as the catalogue grows). With `top_k` the
    catalogue-wide tensors are the policy's logits only, bounded the same way."""
    fit = settings.max_scores_per_call // (max_len * (n_items + 1))
    return max(1, min(settings.batch_size, fit))


def _advantages(
    policy: SequenceEncoder,
    reward_model: CatalogueRewardModel,
    data: SequenceData,
    settings: AdvantagesSettings,
    temperature: float,
    log: Callable[[str], None],
    dev: torch.device,
) -> EventAdvantages:
    lcb, top_k = settings.lcb, settings.top_k
    _check_catalogues(policy, reward_model, data)
    if top_k is not None and not 0 < top_k <= data.n_items:
        raise ValueError(f"top_k must be in 1..{data.n_items}, got {top_k}")
    out = {name: np.full(len(data.events.items), np.nan) for name in FIELDS}
    was_training = policy.training
    policy.eval()
    windows = scored_windows(len(data.windows), settings.max_windows)
    n = len(windows)
    batch_size = states_per_call(settings, data.max_len, data.n_items)
    n_batches = -(-n // batch_size)
    for i, start in enumerate(range(0, n, batch_size)):
        b = to_device(training_batch(data, windows[start : start + batch_size]), dev)
        # The [targets, N] passes run over the targets only, not the windows' padding.
        mask = b["target_ids"] != PAD
        h = policy(b["item_ids"], b["timestamps"], b["decision_ts"])[mask]

        # float32 throughout: the [targets, N] passes are memory-bound, and float64 doubled
        # their cost; V's error stays ~1e-6 (vecdot reduces pairwise), far below any advantage.
        def pi_of(rows: slice, h: torch.Tensor = h) -> torch.Tensor:
            logits = catalogue_logits(h[rows], policy.item_embeddings(), temperature)
            return torch.softmax(logits, dim=-1)

        if top_k is None:
            fields = _over_catalogue(reward_model, b, mask, pi_of, lcb)
        else:
            fields = _over_top_k(reward_model, b, mask, pi_of(slice(None)), lcb, top_k)
        where = b["target_index"][mask.cpu().numpy()]
        for name, value in fields.items():
            out[name][where] = value.cpu().numpy()
        if (i + 1) % max(1, n_batches // 10) == 0 or i + 1 == n_batches:
            log(f"advantages: {min(start + batch_size, n)}/{n} windows")
    policy.train(was_training)
    return EventAdvantages(**out)


def _over_catalogue(
    reward_model: CatalogueRewardModel,
    b: dict,
    mask: torch.Tensor,
    pi_of: Callable[[slice], torch.Tensor],
    lcb: float,
) -> dict[str, torch.Tensor]:
    """V(s) = sum over every title of pi(a|s) r_hat(s, a): the reward model scores the catalogue.
    `mask` [B, L] marks the targets; `pi_of(rows)` gives pi [rows, N] of those targets.

    Every [targets, N] pass after the reward model's runs `ROWS_PER_PASS` targets at a time
    (their rows are copied out of the reward model's [B * L, N] scores, never the whole batch):
    each pass is memory-bound, and a few MB stay in the CPU's cache where the batch's [T, N]
    tensors (~150 MB each) would stream from memory. Each row's figures are the same."""
    tgt = b["target_ids"][mask]  # [T]
    if lcb:  # the catalogue-wide std is needed: the members' K scores are held
        scores = score_rewards(reward_model, b)[:, mask]  # [K, T, n_items + 1]
        logged = scores.gather(-1, tgt[:, None].expand(len(scores), -1, -1))
        mean, std = ensemble_mean_std(scores)
        r = mean.sub_(std.mul_(lcb))
        at = torch.arange(len(r), device=r.device)  # the targets' rows of r
        del scores
    else:  # the members' mean directly, and the logged action's K scores apart
        x = (b["item_ids"], b["timestamps"], b["user_ids"], b["decision_ts"])
        r = reward_model.score_catalogue_mean(*x).flatten(0, 1)  # [B * L, n_items + 1]
        at = mask.flatten().nonzero().squeeze(1)
        logged = reward_model.score_items(*x, b["target_ids"][..., None])[:, mask]
    mean_a, std_a = ensemble_mean_std(logged)
    r_logged = r[at, tgt]  # a target is never the padding column
    v, swa = torch.empty_like(r_logged), torch.empty_like(r_logged)
    for start in range(0, len(at), ROWS_PER_PASS):
        rows = slice(start, start + ROWS_PER_PASS)
        r_rows = r[at[rows]]
        r_rows[:, PAD] = 0.0  # the padding column is meaningless (and has probability 0)
        v[rows], swa[rows] = _fields(pi_of(rows), r_rows)
    return _output(mean_a, std_a, r_logged, v, swa)


def _over_top_k(
    reward_model: CatalogueRewardModel,
    b: dict,
    mask: torch.Tensor,
    pi: torch.Tensor,
    lcb: float,
    top_k: int,
) -> dict[str, torch.Tensor]:
    """V(s) over the policy's top_k titles, pi renormalised on them: the reward model scores
    those k titles and the logged one only (`score_items`), so its cost per target does not
    grow with the catalogue. `mask` and pi as in `_over_catalogue`."""
    x = (b["item_ids"], b["timestamps"], b["user_ids"], b["decision_ts"])
    top, idx = pi.topk(top_k, dim=-1)
    pi_k = top / top.sum(-1, keepdim=True)
    candidates = torch.zeros(*mask.shape, top_k, dtype=idx.dtype, device=idx.device)
    candidates[mask] = idx  # padding positions ask for title 0, and are dropped
    mean, std = ensemble_mean_std(reward_model.score_items(*x, candidates)[:, mask])  # [T, k]
    r = mean.sub_(std.mul_(lcb))
    logged = reward_model.score_items(*x, b["target_ids"][..., None])[:, mask]
    mean_a, std_a = ensemble_mean_std(logged)
    return _output(mean_a, std_a, mean_a[..., 0] - lcb * std_a[..., 0], *_fields(pi_k, r))


def _fields(pi: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """V(s) and the state's policy-weighted advantage sum_a pi (r_hat - V) [T] from pi and
    r_hat over the titles V(s) spans [T, N] (`r` is overwritten)."""
    v = torch.linalg.vecdot(pi, r)
    return v, torch.linalg.vecdot(pi, r.sub_(v[..., None]))


def _output(
    mean_a: torch.Tensor,
    std_a: torch.Tensor,
    r_logged: torch.Tensor,
    v: torch.Tensor,
    state_weighted_advantage: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """A batch's output fields from the targets' logged-action ensemble mean and std [T, 1],
    r_hat [T], V [T] and the policy-weighted advantage [T]."""
    return {
        "r_hat_mean": mean_a[..., 0],
        "r_hat_std": std_a[..., 0],
        "v": v,
        "advantage": r_logged - v,
        "state_weighted_advantage": state_weighted_advantage,
    }


def _event_keys(data: SequenceData) -> pa.Table:
    """user_id, item_id, event_ts (timestamp[us, UTC]) of every event of `data`, by flat index."""
    ev = data.events
    user = ev.users[ev.row_of_event] - 1
    ts_us = np.round(ev.timestamps * 1e6).astype(np.int64)
    return pa.table(
        {
            "user_id": pa.array(data.vocab.users.ids, pa.string()).take(
                pa.array(np.maximum(user, 0), mask=user < 0)
            ),
            "item_id": pa.array(data.vocab.items.ids, pa.string()).take(pa.array(ev.items - 1)),
            "event_ts": pa.array(ts_us, pa.timestamp("us", tz="UTC")),
        }
    )


def advantages_table(
    adv: EventAdvantages, data: SequenceData, event_ids: np.ndarray | None = None
) -> pa.Table:
    """One row per training target: [event_id,] user_id, item_id, event_ts, reward, r_hat_mean,
    r_hat_std, v, advantage, state_weighted_advantage. `event_ids` defaults to data.events'."""
    if len(adv.advantage) != len(data.events.items):
        raise ValueError(f"{len(adv.advantage)} advantages for {len(data.events.items)} events")
    event_ids = data.events.event_ids if event_ids is None else event_ids
    rows = np.flatnonzero(~np.isnan(adv.advantage))
    cols: dict[str, pa.Array] = {}
    if event_ids is not None:
        cols["event_id"] = pa.array(np.asarray(event_ids, dtype=object)[rows], pa.string())
    keys = _event_keys(data).take(pa.array(rows))
    cols.update({name: keys.column(name) for name in keys.column_names})
    reward = data.events.rewards[rows].astype(np.float64)
    cols["reward"] = pa.array(reward, mask=np.isnan(reward))
    cols.update({name: pa.array(getattr(adv, name)[rows], pa.float64()) for name in FIELDS})
    return pa.table(cols)


def write_advantages(adv: EventAdvantages, data: SequenceData, path: str | Path) -> pa.Table:
    table = advantages_table(adv, data)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return table


def read_advantages(path: str | Path, data: SequenceData) -> EventAdvantages:
    """The inverse of `advantages_table`: joined on event_id when both sides have it, else on
    (user_id, event_ts, item_id). Events of `data` without a row get NaN."""
    table = pq.read_table(path)
    missing = [c for c in FIELDS if c not in table.column_names]
    if missing:
        raise ValueError(f"{path} lacks advantage columns {missing}")
    if "event_id" in table.column_names and data.events.event_ids is not None:
        on = ["event_id"]
        left = pa.table({"event_id": pa.array(data.events.event_ids, pa.string())})
    else:
        on = ["user_id", "item_id", "event_ts"]
        left = _event_keys(data)
        table = table.set_column(
            table.schema.get_field_index("event_ts"),
            "event_ts",
            pc.cast(table.column("event_ts"), pa.timestamp("us", tz="UTC")),
        )
    left = left.append_column("_row", pa.array(np.arange(left.num_rows)))
    joined = left.join(table.select(on + list(FIELDS)), on, join_type="inner")
    if joined.num_rows == 0:
        raise ValueError(f"no row of {path} matches an event of the data (joined on {on})")
    rows = joined.column("_row").to_numpy()
    out = {name: np.full(left.num_rows, np.nan) for name in FIELDS}
    for name in FIELDS:
        out[name][rows] = pc.fill_null(joined.column(name), np.nan).to_numpy()
    return EventAdvantages(**out)
