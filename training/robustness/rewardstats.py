"""The reward features re-derived from a (corrupted) reward: the point-in-time mean, standard
deviation and 7-day mean of every user's and title's logged reward, as the dbt marts compute
them (transforms/macros/stats.sql: one row per entity per day with events, stamped at the end
of the day, cumulative and last-7-days windows, sample std), in numpy.

The reward model reads these features, so a corrupted log must reach them too; the count and
popularity features do not depend on reward values and are kept as Feast served them. The
statistics are taken over the events of `SequenceData` (users with a sequence), at every level
including 0, so every level of the study goes through the same code.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from training.core.data import SequenceData
from training.reward.features import DAY_SECONDS, FeatureTables, dense_from_rows

REWARD_COLUMNS = ("reward_mean", "reward_std", "reward_mean_7d")


def daily_reward_stats(
    entities: np.ndarray, ts: np.ndarray, rewards: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (entity, day with events): entity [G], end-of-day stamp [G] and [G, 3] mean, sample
    std and last-7-days mean of the rewards up to and including that day (NaN where none)."""
    day = np.floor(np.asarray(ts, np.float64) / DAY_SECONDS).astype(np.int64)
    r = np.asarray(rewards, np.float64)
    has = np.isfinite(r)
    r0 = np.where(has, r, 0.0)
    lo = int(day.min()) if len(day) else 0
    span = (int(day.max()) - lo + 1 if len(day) else 1) + 7  # room for "7 days before the first"
    key = np.asarray(entities, np.int64) * span + (day - lo + 7)
    keys, inv = np.unique(key, return_inverse=True)  # sorted by entity, then day
    sums = [np.bincount(inv, weights=w, minlength=len(keys)) for w in (has * 1.0, r0, r0 * r0)]
    ent, gday = keys // span, keys % span
    cum = [np.cumsum(s) for s in sums]
    first = np.searchsorted(keys, ent * span, side="left")  # the entity's first group

    def upto(c: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Sum of groups start..g of the same entity (c is the global cumulative sum)."""
        return c - np.where(start > 0, c[np.maximum(start - 1, 0)], 0.0)

    n, s, ss = (upto(c, first) for c in cum)
    week = np.maximum(np.searchsorted(keys, ent * span + gday - 6, side="left"), first)
    n7, s7 = upto(cum[0], week), upto(cum[1], week)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s / n, np.nan)
        var = np.round((ss - s * s / np.maximum(n, 1)) / np.maximum(n - 1, 1), 12)
        std = np.where(n > 1, np.sqrt(np.maximum(var, 0.0)), np.nan)
        mean7 = np.where(n7 > 0, s7 / n7, np.nan)
    stamp = (gday - 7 + lo + 1).astype(np.float64) * DAY_SECONDS
    return ent, stamp, np.column_stack([mean, std, mean7])


def with_rewards(
    tables: FeatureTables, data: SequenceData, rewards: np.ndarray, item_events: np.ndarray | None
) -> FeatureTables:
    """`tables` with the user and title reward columns re-derived from [E] `rewards` of `data`'s
    events; title statistics from the events `item_events` selects only (None: every event)."""
    ev = data.events
    users = ev.users[ev.row_of_event]
    sel = slice(None) if item_events is None else np.asarray(item_events, bool)
    out = {}
    for side, ent, ts, r, table, names in (
        ("user", users, ev.timestamps, rewards, tables.user, tables.user_names),
        ("item", ev.items[sel], ev.timestamps[sel], np.asarray(rewards)[sel], tables.item,
         tables.item_names),
    ):  # fmt: skip
        e, stamp, values = daily_reward_stats(ent, ts, r)
        dense = dense_from_rows(e, stamp, values.astype(np.float32), tables.stamps,
                                table.shape[1] - 1)  # fmt: skip
        new = table.copy()
        for j, col in enumerate(REWARD_COLUMNS):
            new[:, :, names.index(f"{side}_{col}")] = dense[:, :, j]
        out[side] = new
    return dataclasses.replace(tables, user=out["user"], item=out["item"])
