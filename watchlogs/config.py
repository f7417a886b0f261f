"""Knobs of the synthetic watch world; defaults are sized like MovieLens-1M."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from common.settings import setting

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class SimulatorConfig:
    n_users: int = setting(6000, "simulated users")
    n_items: int = setting(3500, "titles in the catalogue (films and episodes)")
    n_events: int = setting(1_000_000, "watch events in the window")
    n_days: int = setting(120, "length of the window in days")
    start_date: str = setting("2025-01-01", "first day of the window (YYYY-MM-DD, UTC)")
    latent_dim: int = setting(16, "dimension of the hidden taste and title factors")
    seed: int = setting(0, "seed of every random draw: the same config gives the same logs")

    # Catalogue: films and series of episodes; release days and buzz make popularity move.
    series_share: float = setting(0.5, "share of items that are episodes")
    mean_series_length: float = setting(8.0, "mean number of episodes in a series")
    zipf_exponent: float = setting(1.0, "base popularity of titles ~ rank^-exponent (long tail)")
    popularity_quality_corr: float = setting(
        0.3, "correlation of base popularity with quality (only partly)"
    )
    new_release_share: float = setting(
        0.3, "share of titles released inside the window, the rest before"
    )
    buzz_amplitude: float = setting(4.0, "median peak boost of a title's popularity after release")
    buzz_peak_days_max: float = setting(14.0, "latest day after release a title's buzz peaks")
    later_episode_exposure: float = setting(
        0.05, "exposure of later episodes as entry points (rarely shown)"
    )

    # Hidden satisfaction s = 1 + 4 sigmoid(affinity_scale * taste.factor + quality + bias).
    affinity_scale: float = setting(1.5, "weight of taste . factor in the hidden satisfaction s")
    quality_std: float = setting(0.7, "spread of the titles' hidden quality in s")
    user_bias_std: float = setting(0.4, "spread of the users' bias in s")

    # Activity and sessions.
    activity_sigma: float = setting(1.0, "log-normal spread of user activity (heavy tail)")
    min_events_per_user: int = setting(5, "every user watches at least this many titles")
    max_events_per_day: float = setting(8.0, "cap on a user's mean daily events")
    mean_session_events: float = setting(3.0, "mean number of events in a session")
    min_session_gap_seconds: float = setting(
        3600.0, "sessions start at least this long after the last"
    )
    browse_gap_median_seconds: float = setting(
        45.0, "median gap within a session, after the previous playback"
    )
    browse_gap_max_seconds: float = setting(1200.0, "longest gap within a session")

    # Choice: habit, autoplay and trends override or bias choices by satisfaction.
    n_popular_candidates: int = setting(40, "candidates drawn by popularity at the event's day")
    n_uniform_candidates: int = setting(8, "drawn uniformly from the catalogue")
    satisfaction_weight: float = setting(1.0, "softmax weight of s (1-5 scale) among candidates")
    trend_weight: float = setting(0.7, "softmax weight of log buzz: hype users follow")
    mid_series_penalty: float = setting(1.5, "softmax penalty of starting a series mid-way")
    continue_series_base: float = setting(
        0.55, "P(continue the last series | a next episode exists)"
    )
    continue_series_slope: float = setting(
        0.2, "added to continue_series_base per unit of (s_last_episode - 3) / 2"
    )
    autoplay_next_episode: float = setting(
        0.5, "within a session, P(next episode starts by itself)"
    )
    autoplay_promoted: float = setting(0.2, "within a session, P(a promoted popular title starts)")

    # Outcomes.
    watch_slope: float = setting(1.2, "logit of watch fraction per satisfaction point")
    watch_bias: float = setting(0.3, "offset of the watch fraction's logit")
    watch_noise: float = setting(1.0, "noise on the logit of the watch fraction")
    autoplay_inflation: float = setting(0.5, "mean share of the unwatched rest an autoplay runs on")
    interruption_share: float = setting(
        0.1, "share of playbacks an external interruption cuts at random"
    )
    rating_share: float = setting(0.04, "share of events that carry an explicit 1-5 rating")
    rating_noise: float = setting(0.6, "noise of a rating around s")

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
