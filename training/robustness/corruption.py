"""Corruptions of the logged 1-5 reward, each with a level knob. Only rewards change: the item
sequences, timestamps and every other column are the logged ones, so one pretrained policy
serves every level and differences between levels come from the reward alone.

- noise: r + sigma * z, z ~ N(0, 1) per event, clipped to [1, 5]; level = sigma.
- replace: a share of the rewards replaced by a uniform draw on [1, 5]; level = the share.
- habit: r + level on the events that say "habit", not "liked it" (clipped to 5); level in
  reward points. Habit events (`habit_events`): playback the log marks as autoplay (the
  simulator autoplays the next episode, or a promoted popular title when there is none) and
  titles that are trending when watched (top `trending_share` of the title's events in the 7
  days before, from the point-in-time feature `item_popularity_7d`). The simulator does not log
  deliberate series continuation, so that habit is covered only where it autoplays.

The random draws are made once per event from `seed` and scaled by the level (common random
numbers), so two levels differ only by the level and every level is reproducible. Null rewards
stay null. Level 0 is the logged reward, exactly.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

CorruptionKind = Literal["noise", "replace", "habit"]
KINDS: tuple[str, ...] = get_args(CorruptionKind)
LOW, HIGH = 1.0, 5.0


def corrupt_rewards(
    rewards: np.ndarray,
    kind: str,
    level: float,
    seed: int = 0,
    habit: np.ndarray | None = None,
) -> np.ndarray:
    """[E] float32 corrupted copy of the [E] logged rewards (NaN stays NaN); see the module."""
    if kind not in KINDS:
        raise ValueError(f"unknown corruption {kind!r}; choose one of {KINDS}")
    if not level >= 0:
        raise ValueError(f"corruption level must be >= 0, got {level}")
    r = np.asarray(rewards, dtype=np.float64)
    if level == 0:
        return r.astype(np.float32)
    # One stream per kind, drawn for every event whatever the level: common random numbers.
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    if kind == "noise":
        out = r + level * rng.standard_normal(len(r))
    elif kind == "replace":
        if level > 1:
            raise ValueError(f"the replaced share must be in [0, 1], got {level}")
        u, draw = rng.random(len(r)), rng.uniform(LOW, HIGH, len(r))
        out = np.where(u < level, draw, r)
    else:
        if habit is None or len(habit) != len(r):
            raise ValueError("habit corruption needs one habit flag per event (habit_events)")
        out = np.where(np.asarray(habit, dtype=bool), r + level, r)
    return np.where(np.isfinite(r), np.clip(out, LOW, HIGH), np.nan).astype(np.float32)


def habit_events(
    autoplay: np.ndarray, popularity_7d: np.ndarray, trending_share: float
) -> np.ndarray:
    """[E] True for autoplayed events and for events whose title's point-in-time 7-day event
    count is in the top `trending_share` of all events' (0: autoplay alone)."""
    if not 0 <= trending_share <= 1:
        raise ValueError(f"trending_share must be in [0, 1], got {trending_share}")
    habit = np.asarray(autoplay, dtype=bool).copy()
    pop = np.nan_to_num(np.asarray(popularity_7d, dtype=np.float64), nan=0.0)
    if trending_share > 0 and len(pop) and pop.max() > 0:
        habit |= pop >= np.quantile(pop, 1.0 - trending_share)
    return habit
