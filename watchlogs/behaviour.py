"""What users watch: the logging policy, mixing satisfaction with habit, autoplay and hype.

Users advance one event at a time, vectorised across all users of a chunk (sorted by activity,
so the users still active at step t are a prefix). Each event is one of:
- autoplay of the next episode (within a session, after an episode), whatever s is;
- autoplay of a promoted popular title (within a session, when no next episode exists);
- a deliberate continuation of the last series watched (strongly favoured, weakly tied to s);
- a choice: softmax over a small candidate set (popularity-weighted draws at the event's day,
  plus a few uniform ones) of satisfaction + hype (log buzz) - a mid-series penalty.
Nothing is ever computed over the whole catalogue per event. Seen titles are ruled out, so a
title is watched twice only when every candidate drawn for a choice or promotion was seen.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from watchlogs.config import SimulatorConfig
from watchlogs.timeline import SessionPlan
from watchlogs.world import Catalogue, Users, true_satisfaction

CHOSEN, CONTINUED, AUTOPLAY_NEXT, AUTOPLAY_PROMOTED = 0, 1, 2, 3
CHOICE_REASONS = ("chosen", "series_continuation", "autoplay_next_episode", "autoplay_promoted")
PROMOTED_DRAWS = 8  # popularity draws an autoplay promotion may pick from (first unseen wins)
SEEN_BUDGET_BYTES = 256 << 20  # the per-chunk [users, items] seen bitmap stays under this
POOL_PER_ITEM, POOL_MIN, POOL_MAX = 8, 1 << 16, 1 << 18  # popularity urn size per day
_UNAVAILABLE = -1e9  # utility of seen titles (unreleased ones get twice that)


def chunk_size(n_users: int, n_items: int) -> int:
    return max(1, min(n_users, SEEN_BUDGET_BYTES // max(1, n_items)))


def simulate_choices(
    cfg: SimulatorConfig,
    cat: Catalogue,
    users: Users,
    plan: SessionPlan,
    seed: np.random.SeedSequence,
    progress: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Item and reason code of every planned event (user-major, like the plan)."""
    total = int(plan.offsets[-1])
    items = np.empty(total, dtype=np.int32)
    reasons = np.empty(total, dtype=np.int8)
    pool_size = int(np.clip(POOL_PER_ITEM * cfg.n_items, POOL_MIN, POOL_MAX))
    pool = cat.popularity_pool(cfg.n_days, pool_size, np.random.default_rng(seed.spawn(1)[0]))
    day_bias = choice_bias(cfg, cat)
    order = np.argsort(-users.n_events, kind="stable")
    size = chunk_size(cfg.n_users, cfg.n_items)
    chunks = [order[lo : lo + size] for lo in range(0, len(order), size)]
    for number, (chunk, chunk_seed) in enumerate(zip(chunks, seed.spawn(len(chunks)), strict=True)):
        _ChunkRun(
            cfg, cat, users, plan, pool, day_bias, chunk, np.random.default_rng(chunk_seed)
        ).run(items, reasons)
        if progress is not None and len(chunks) > 1:
            progress(f"simulated choices for user chunk {number + 1}/{len(chunks)}")
    return items, reasons


def choice_bias(cfg: SimulatorConfig, cat: Catalogue) -> np.ndarray:
    """[n_days, n_items] float32 utility terms that depend on the day, not the user:
    hype (trend_weight * log buzz), the mid-series penalty, and unreleased titles ruled out."""
    table = np.empty((cfg.n_days, cat.n_items), dtype=np.float32)
    items = np.arange(cat.n_items)
    mid_series = (cat.episode > 0) * cfg.mid_series_penalty
    for day in range(cfg.n_days):  # row by row bounds the float64 temporaries
        row = cfg.trend_weight * np.log(cat.buzz(np.float64(day), items)) - mid_series
        row[cat.release_day > day] = 2 * _UNAVAILABLE
        table[day] = row
    return table


class _ChunkRun:
    """State of one chunk of users while they advance step by step."""

    def __init__(
        self,
        cfg: SimulatorConfig,
        cat: Catalogue,
        users: Users,
        plan: SessionPlan,
        pool: np.ndarray,
        day_bias: np.ndarray,
        chunk: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        self.cfg, self.cat, self.users, self.plan = cfg, cat, users, plan
        self.pool, self.day_bias, self.rng = pool, day_bias, rng
        self.global_user = chunk
        self.start = plan.offsets[chunk]
        counts = users.n_events[chunk]  # descending
        self.active = np.searchsorted(-counts, -np.arange(counts[0]), side="left")
        n = len(chunk)
        self.seen = np.zeros((n, cat.n_items), dtype=bool)
        self.last_item = np.full(n, -1, dtype=np.int64)
        self.last_episode = np.full(n, -1, dtype=np.int64)
        self.last_episode_s = np.full(n, 3.0)
        # Index -1 (nothing watched yet) maps to "no next episode".
        self.next_of = np.r_[cat.next_episode, -1].astype(np.int64)

    def run(self, items_out: np.ndarray, reasons_out: np.ndarray) -> None:
        for t, a in enumerate(self.active):
            pos = self.start[:a] + t
            item, reason = self._step(a, self.plan.day[pos], self.plan.first[pos])
            items_out[pos] = item
            reasons_out[pos] = reason

    def _step(self, a: int, day: np.ndarray, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cfg, rows, rng = self.cfg, np.arange(a), self.rng
        next_auto = self._unseen_next(rows, self.last_item[:a])
        next_series = self._unseen_next(rows, self.last_episode[:a])
        has_auto, has_series = next_auto >= 0, next_series >= 0
        u_auto, u_cont = rng.random(a), rng.random(a)

        auto_next = ~first & has_auto & (u_auto < cfg.autoplay_next_episode)
        auto_promo = ~first & ~has_auto & (u_auto < cfg.autoplay_promoted)
        p_cont = cfg.continue_series_base + cfg.continue_series_slope * (
            (self.last_episode_s[:a] - 3.0) / 2.0
        )
        cont = ~auto_next & ~auto_promo & has_series & (u_cont < p_cont)
        chosen = ~(auto_next | auto_promo | cont)

        item = np.where(auto_next, next_auto, next_series)
        reason = np.full(a, CONTINUED, dtype=np.int8)
        reason[auto_next] = AUTOPLAY_NEXT
        promo = np.flatnonzero(auto_promo)
        if len(promo):
            item[promo] = self._promoted(promo, day[promo])
            reason[promo] = AUTOPLAY_PROMOTED
        pick = np.flatnonzero(chosen)
        if len(pick):
            item[pick] = self._choose(pick, day[pick])
            reason[pick] = CHOSEN
        self._remember(rows, item)
        return item, reason

    def _unseen_next(self, rows: np.ndarray, last: np.ndarray) -> np.ndarray:
        nxt = self.next_of[last]
        blocked = self.seen[rows, nxt] | (nxt < 0)
        return np.where(blocked, -1, nxt)

    def _popular(self, day: np.ndarray, k: int) -> np.ndarray:
        """k popularity-weighted draws per row at each row's day: [m, k] items."""
        size = self.pool.shape[1]
        return self.pool[day[:, None], self.rng.integers(0, size, (len(day), k))]

    def _promoted(self, rows: np.ndarray, day: np.ndarray) -> np.ndarray:
        draws = self._popular(day, PROMOTED_DRAWS)
        unseen = ~self.seen[rows[:, None], draws]
        return draws[np.arange(len(rows)), np.argmax(unseen, axis=1)]

    def _choose(self, rows: np.ndarray, day: np.ndarray) -> np.ndarray:
        cfg, cat, rng = self.cfg, self.cat, self.rng
        cand = np.concatenate(
            [
                self._popular(day, cfg.n_popular_candidates),
                rng.integers(0, cat.n_items, (len(rows), cfg.n_uniform_candidates)),
            ],
            axis=1,
        )
        s = true_satisfaction(self.users, cat, self.global_user[rows], cand)
        utility = (
            cfg.satisfaction_weight * s
            + self.day_bias[day[:, None], cand]
            - np.log(rng.standard_exponential(cand.shape))  # Gumbel noise: softmax sampling
        )
        utility[self.seen[rows[:, None], cand]] = _UNAVAILABLE
        return cand[np.arange(len(rows)), np.argmax(utility, axis=1)]

    def _remember(self, rows: np.ndarray, item: np.ndarray) -> None:
        a = len(rows)
        self.seen[rows, item] = True
        self.last_item[:a] = item
        episode = np.flatnonzero(self.cat.series[item] >= 0)
        if len(episode):
            self.last_episode[episode] = item[episode]
            self.last_episode_s[episode] = true_satisfaction(
                self.users, self.cat, self.global_user[episode], item[episode]
            )
