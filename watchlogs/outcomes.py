"""What the logs record about each playback: watch time and the occasional explicit rating."""

from __future__ import annotations

import numpy as np

from watchlogs.config import SimulatorConfig


def watch_fraction(
    cfg: SimulatorConfig, s: np.ndarray, autoplay: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Share of the title played, in [0, 1]: a noisy logistic function of satisfaction.

    Autoplay runs on past interest (nobody pressed stop) and external interruptions cut any
    playback short, so watch time is an inflated, noisy proxy of s, not s itself.
    """
    n = len(s)
    logit = cfg.watch_slope * (s - 3.0) + cfg.watch_bias + rng.normal(0.0, cfg.watch_noise, n)
    frac = 1.0 / (1.0 + np.exp(-logit))
    run_on = rng.beta(2.0, 2.0, n) * 2.0 * cfg.autoplay_inflation  # mean = autoplay_inflation
    frac = np.where(autoplay, frac + (1.0 - frac) * np.minimum(run_on, 1.0), frac)
    interrupted = rng.random(n) < cfg.interruption_share
    frac = np.where(interrupted, frac * rng.random(n), frac)
    return np.clip(frac, 0.0, 1.0)


def ratings(
    cfg: SimulatorConfig, s: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(values int8 1-5, given mask): sparse, more often at strong feelings, noisy around s."""
    strength = 0.5 + np.abs(s - 3.0) / 2.0  # in [0.5, 1.5]
    given = rng.random(len(s)) < cfg.rating_share * strength / max(strength.mean(), 1e-9)
    values = np.clip(np.rint(s + rng.normal(0.0, cfg.rating_noise, len(s))), 1, 5)
    return values.astype(np.int8), given
