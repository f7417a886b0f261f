"""The hidden world: a catalogue of films and series episodes, and users with tastes and activity.

Titles (films or whole series) carry the latent factors, quality, release day, buzz curve and
base popularity; items are films or single episodes, shuffled so ids say nothing about series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from watchlogs.config import SimulatorConfig
from watchlogs.oracle import satisfaction_from_logit

BACK_CATALOGUE_DAYS = 730  # titles released before the window came out up to two years earlier
FILM_MINUTES = (110.0, 17.0, 80.0, 150.0)  # mean, sd, min, max
EPISODE_MINUTES = np.array([22.0, 45.0, 57.0])  # sitcom, drama, prestige drama
EPISODE_KIND_P = np.array([0.35, 0.45, 0.2])


@dataclass(frozen=True)
class Catalogue:
    factors: np.ndarray  # [items, d] float32
    quality: np.ndarray  # [items] float32, the item bias of s
    duration: np.ndarray  # [items] float64 seconds
    series: np.ndarray  # [items] int32 series id, -1 for films
    episode: np.ndarray  # [items] int32 episode index inside its series (0 for films)
    next_episode: np.ndarray  # [items] int32 item of the next episode, -1 if none
    release_day: np.ndarray  # [items] int32, days since window start (negative: earlier)
    buzz_amp: np.ndarray  # [items] float32 peak popularity boost after release
    buzz_peak: np.ndarray  # [items] float32 days from release to the buzz peak
    exposure: np.ndarray  # [items] float64 base popularity (Zipf) times entry-point weight

    @property
    def n_items(self) -> int:
        return len(self.quality)

    def buzz(self, day: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Popularity multiplier at `day` (broadcasts): rises to a peak after release, decays."""
        x = np.maximum(day - self.release_day[items] + 0.5, 0.0) / self.buzz_peak[items]
        return 1.0 + self.buzz_amp[items] * x * np.exp(1.0 - x)

    def popularity_pool(self, n_days: int, size: int, rng: np.random.Generator) -> np.ndarray:
        """[n_days, size] int32: each day's popularity distribution as a resampled urn.

        Systematic resampling gives every item floor or ceil of size * p copies (items rarer
        than 1/size appear with probability size * p, a fresh offset each day), so a uniform
        draw from a day's row is popularity-weighted, unbiased, and costs one gather instead of
        a binary search. Unreleased items have zero mass and never appear.
        """
        pool = np.empty((n_days, size), dtype=np.int32)
        items = np.arange(self.n_items)
        for day in range(n_days):  # one row at a time bounds memory; n_days is small
            weights = self.exposure * self.buzz(np.float64(day), items)
            weights *= self.release_day <= day
            cdf = np.cumsum(weights)
            marks = np.floor(cdf * (size / cdf[-1]) + rng.random())
            copies = np.diff(np.r_[0.0, marks]).astype(np.int64)
            copies[-1] += size - copies.sum()  # float rounding at the very end
            pool[day] = np.repeat(items, copies)
        return pool


@dataclass(frozen=True)
class Users:
    taste: np.ndarray  # [users, d] float32, scaled so that taste.factor has sd ~ affinity_scale
    bias: np.ndarray  # [users] float32
    n_events: np.ndarray  # [users] int64, events each user will produce


def build_catalogue(cfg: SimulatorConfig, rng: np.random.Generator) -> Catalogue:
    n_items, d = cfg.n_items, cfg.latent_dim
    series_len = _series_lengths(round(cfg.series_share * n_items), cfg.mean_series_length, rng)
    n_series, n_films = len(series_len), n_items - int(series_len.sum())
    n_titles = n_series + n_films  # titles 0..n_series-1 are series, the rest films

    title_factor = rng.standard_normal((n_titles, d)) / np.sqrt(d)
    title_quality = rng.normal(0.0, cfg.quality_std, n_titles)
    released_new = rng.random(n_titles) < cfg.new_release_share
    title_release = np.where(
        released_new,
        rng.integers(0, cfg.n_days, n_titles),
        -rng.integers(1, BACK_CATALOGUE_DAYS + 1, n_titles),
    )
    title_amp = cfg.buzz_amplitude * np.exp(rng.normal(0.0, 0.7, n_titles))
    title_peak = rng.uniform(2.0, max(2.0, cfg.buzz_peak_days_max), n_titles)
    # Popularity rank follows quality only partly: a noisy score, then Zipf over its ranks.
    rho = cfg.popularity_quality_corr
    noise = rng.standard_normal(n_titles)
    score = rho * title_quality / max(cfg.quality_std, 1e-9) + np.sqrt(1 - rho**2) * noise
    rank = np.empty(n_titles, dtype=np.int64)
    rank[np.argsort(-score, kind="stable")] = np.arange(n_titles)
    title_pop = (rank + 1.0) ** -cfg.zipf_exponent

    # Canonical item order: episodes series by series, then films.
    series_of = np.repeat(np.arange(n_series), series_len)
    starts = np.cumsum(series_len) - series_len
    episode = np.arange(len(series_of)) - np.repeat(starts, series_len)
    title = np.concatenate([series_of, n_series + np.arange(n_films)])
    episode = np.concatenate([episode, np.zeros(n_films, dtype=np.int64)])
    series = np.concatenate([series_of, np.full(n_films, -1)])
    is_ep = series >= 0

    factors = title_factor[title] + is_ep[:, None] * rng.normal(0, 0.15 / np.sqrt(d), (n_items, d))
    quality = title_quality[title] + is_ep * rng.normal(0.0, 0.2, n_items)
    kind = rng.choice(len(EPISODE_MINUTES), size=n_titles, p=EPISODE_KIND_P)
    ep_minutes = np.clip(EPISODE_MINUTES[kind][title] + rng.normal(0, 1.5, n_items), 20, 60)
    mean, sd, lo, hi = FILM_MINUTES
    film_minutes = np.clip(rng.normal(mean, sd, n_items), lo, hi)
    duration = np.round(np.where(is_ep, ep_minutes, film_minutes) * 60.0)
    exposure = title_pop[title] * np.where(episode > 0, cfg.later_episode_exposure, 1.0)
    next_canonical = np.full(n_items, -1, dtype=np.int64)
    follows = np.flatnonzero(is_ep[:-1] & (series[1:] == series[:-1]))
    next_canonical[follows] = follows + 1

    # Shuffle: new item j is canonical item order[j].
    order = rng.permutation(n_items)
    new_of = np.empty(n_items, dtype=np.int64)
    new_of[order] = np.arange(n_items)
    nxt = next_canonical[order]
    return Catalogue(
        factors=factors[order].astype(np.float32),
        quality=quality[order].astype(np.float32),
        duration=duration[order].astype(np.float64),
        series=series[order].astype(np.int32),
        episode=episode[order].astype(np.int32),
        next_episode=np.where(nxt >= 0, new_of[np.maximum(nxt, 0)], -1).astype(np.int32),
        release_day=title_release[title][order].astype(np.int32),
        buzz_amp=title_amp[title][order].astype(np.float32),
        buzz_peak=title_peak[title][order].astype(np.float32),
        exposure=exposure[order],
    )


def build_users(cfg: SimulatorConfig, rng: np.random.Generator) -> Users:
    taste = rng.standard_normal((cfg.n_users, cfg.latent_dim)) * cfg.affinity_scale
    bias = rng.normal(0.0, cfg.user_bias_std, cfg.n_users)
    weights = np.exp(rng.normal(0.0, cfg.activity_sigma, cfg.n_users))
    n_events = allocate_events(
        weights, cfg.n_events, cfg.min_events_per_user, cfg.max_events_per_user
    )
    return Users(taste.astype(np.float32), bias.astype(np.float32), n_events)


def allocate_events(weights: np.ndarray, total: int, low: int, high: int) -> np.ndarray:
    """Integer counts in [low, high] summing to `total`, proportional to weights above `low`.

    Water-filling: find the scale where min(high, low + scale * w) sums to total, then hand the
    rounding remainder to the largest fractional parts.
    """
    lo_s, hi_s = 0.0, float(total) / weights.min()
    for _ in range(200):  # bisection on the scale; a fixed count keeps it deterministic
        mid = 0.5 * (lo_s + hi_s)
        if np.minimum(high, low + mid * weights).sum() < total:
            lo_s = mid
        else:
            hi_s = mid
    share = np.minimum(high, low + hi_s * weights)
    counts = np.floor(share).astype(np.int64)
    short = total - int(counts.sum())
    if short > 0:
        room = np.flatnonzero(counts < high)
        frac = (share - counts)[room]
        counts[room[np.argsort(-frac, kind="stable")[:short]]] += 1
    elif short < 0:
        counts[np.argsort(-counts, kind="stable")[:-short]] -= 1
    return counts


def true_satisfaction(
    users: Users, cat: Catalogue, user_rows: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """s(u, i): `items` is [n] (one per user row) or [n, k] (a candidate set per user row)."""
    taste, factors = users.taste[user_rows], cat.factors[items]
    if items.ndim == 1:
        affinity = np.einsum("nd,nd->n", taste, factors)
        return satisfaction_from_logit(affinity + cat.quality[items] + users.bias[user_rows])
    affinity = np.einsum("nd,nkd->nk", taste, factors)
    bias = users.bias[user_rows][:, None]
    return satisfaction_from_logit(affinity + cat.quality[items] + bias)


def _series_lengths(n_episodes: int, mean: float, rng: np.random.Generator) -> np.ndarray:
    """Series sizes (at least 2 episodes, the last may be cut) adding up to n_episodes."""
    if n_episodes <= 0:
        return np.zeros(0, dtype=np.int64)
    draws = np.maximum(2, rng.poisson(mean, size=n_episodes // 2 + 1))
    ends = np.cumsum(draws)
    last = int(np.searchsorted(ends, n_episodes))
    lengths = draws[: last + 1].copy()
    lengths[-1] -= ends[last] - n_episodes
    return lengths
