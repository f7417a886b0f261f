"""Knobs of the synthetic watch world; defaults are sized like MovieLens-1M."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class SimulatorConfig:
    n_users: int = 6000
    n_items: int = 3500
    n_events: int = 1_000_000
    n_days: int = 120
    start_date: str = "2025-01-01"
    latent_dim: int = 16
    seed: int = 0

    # Catalogue: films and series of episodes; release days and buzz make popularity move.
    series_share: float = 0.5  # share of items that are episodes
    mean_series_length: float = 8.0
    zipf_exponent: float = 1.0  # base popularity of titles ~ rank^-exponent (long tail)
    popularity_quality_corr: float = 0.3  # popularity only partly follows quality
    new_release_share: float = 0.3  # titles released inside the window, the rest before
    buzz_amplitude: float = 4.0  # median peak boost of a title's popularity after release
    buzz_peak_days_max: float = 14.0
    later_episode_exposure: float = 0.05  # later episodes are rarely shown as entry points

    # Hidden satisfaction s = 1 + 4 sigmoid(affinity_scale * taste.factor + quality + bias).
    affinity_scale: float = 1.5
    quality_std: float = 0.7
    user_bias_std: float = 0.4

    # Activity and sessions.
    activity_sigma: float = 1.0  # log-normal spread of user activity (heavy tail)
    min_events_per_user: int = 5
    max_events_per_day: float = 8.0  # cap on a user's mean daily events
    mean_session_events: float = 3.0
    min_session_gap_seconds: float = 3600.0  # sessions start at least this long after the last
    browse_gap_median_seconds: float = 45.0  # within a session, after the previous playback
    browse_gap_max_seconds: float = 1200.0

    # Choice: habit, autoplay and trends override or bias choices by satisfaction.
    n_popular_candidates: int = 40  # drawn by popularity at the event's day
    n_uniform_candidates: int = 8
    satisfaction_weight: float = 1.0  # softmax weight of s (1-5 scale) among candidates
    trend_weight: float = 0.7  # softmax weight of log buzz: hype users follow
    mid_series_penalty: float = 1.5  # starting a series mid-way is unattractive
    continue_series_base: float = 0.55  # P(continue the last series | a next episode exists)
    continue_series_slope: float = 0.2  # added per unit of (s_last_episode - 3) / 2
    autoplay_next_episode: float = 0.5  # within a session, P(next episode starts by itself)
    autoplay_promoted: float = 0.2  # within a session, P(a promoted popular title starts)

    # Outcomes.
    watch_slope: float = 1.2  # logit of watch fraction per satisfaction point
    watch_bias: float = 0.3
    watch_noise: float = 1.0
    autoplay_inflation: float = 0.5  # mean share of the unwatched rest an autoplay runs on
    interruption_share: float = 0.1  # external interruptions cut playback at random
    rating_share: float = 0.04
    rating_noise: float = 0.6

    def __post_init__(self) -> None:
        positive = ("n_users", "n_items", "n_events", "n_days", "latent_dim")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"SimulatorConfig.{name} must be >= 1")
        for name in ("series_share", "new_release_share", "rating_share", "interruption_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SimulatorConfig.{name} must be in [0, 1]")
        if self.new_release_share >= 1.0:
            raise ValueError("some titles must be released before the window starts")
        if self.min_events_per_user < 1:
            raise ValueError("min_events_per_user must be >= 1 (every simulated user watches)")
        if self.n_popular_candidates < 1:
            raise ValueError("n_popular_candidates must be >= 1")
        cap = self.max_events_per_user
        if self.n_events > self.n_users * cap:
            raise ValueError(f"n_events exceeds n_users * max events per user ({cap})")
        if self.n_events < self.n_users * self.min_events_per_user:
            raise ValueError("n_events is below n_users * min_events_per_user")
        self.start_us  # noqa: B018 - validates start_date early

    @property
    def max_events_per_user(self) -> int:
        return max(self.min_events_per_user, int(self.max_events_per_day * self.n_days))

    @property
    def start_us(self) -> int:
        """Window start as microseconds since the Unix epoch (UTC midnight)."""
        day = datetime.fromisoformat(self.start_date).replace(tzinfo=UTC)
        return int(day.timestamp()) * 1_000_000

    @property
    def window_seconds(self) -> float:
        return float(self.n_days * SECONDS_PER_DAY)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def tiny(cls, **overrides: Any) -> SimulatorConfig:
        """A world small enough for unit tests (about 3000 events)."""
        base = dict(n_users=60, n_items=200, n_events=3000, n_days=30, latent_dim=8)
        base["max_events_per_day"] = 4.0  # heavy users must not exhaust the small catalogue
        return cls(**{**base, **overrides})
