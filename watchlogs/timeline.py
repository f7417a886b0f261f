"""When things happen: sessions are planned before choices (their day drives trends and
releases), and exact timestamps are laid out after playback lengths are known.

Events are held user-major (user 0's events, then user 1's, ...), each user's in time order.
Within a session an event starts seconds to minutes after the previous playback ends (a few
seconds for autoplay); sessions start at least `min_session_gap_seconds` after the previous one
ended and are otherwise spread over the window, mostly in the evening.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from watchlogs.config import SECONDS_PER_DAY, SimulatorConfig

AUTOPLAY_COUNTDOWN_SECONDS = (5.0, 15.0)
EVENING_SHARE, EVENING_HOUR, EVENING_SD_HOURS = 0.7, 20.5, 2.0


@dataclass(frozen=True)
class SessionPlan:
    offsets: np.ndarray  # [users + 1] first event of each user (user-major layout)
    user: np.ndarray  # [events] int32 user row
    first: np.ndarray  # [events] bool, the event opens a session
    session: np.ndarray  # [events] int64 global session index
    session_user: np.ndarray  # [sessions] int32
    planned_start: np.ndarray  # [sessions] float64 seconds since window start
    day: np.ndarray  # [events] int32 planned day (choices use it for trends and releases)


def plan_sessions(
    cfg: SimulatorConfig,
    n_events: np.ndarray,
    mean_active_seconds: float,
    rng: np.random.Generator,
) -> SessionPlan:
    n_users, total = len(n_events), int(n_events.sum())
    offsets = np.concatenate([[0], np.cumsum(n_events)])
    user = np.repeat(np.arange(n_users, dtype=np.int32), n_events)
    position = np.arange(total) - offsets[user]
    first = (position == 0) | (rng.random(total) < 1.0 / cfg.mean_session_events)
    session = np.cumsum(first) - 1
    session_user = user[first]

    # Sorted uniform positions per user from normalised exponential spacings (no sort needed).
    spacing = rng.standard_exponential(len(session_user))
    tail = rng.standard_exponential(n_users)
    running = np.cumsum(spacing)
    user_first_session = np.searchsorted(session_user, np.arange(n_users))
    before_user = running[user_first_session] - spacing[user_first_session]
    within = running - before_user[session_user]
    span_total = within[np.r_[user_first_session[1:] - 1, len(within) - 1]] + tail
    fraction = within / span_total[session_user]

    # Leave room at the end for the user's own viewing time, so pushes rarely overflow.
    window = cfg.window_seconds
    busy = n_events * (mean_active_seconds + cfg.min_session_gap_seconds / cfg.mean_session_events)
    usable = window - np.minimum(0.5 * window, 1.5 * busy)
    day = np.floor(fraction * usable[session_user] / SECONDS_PER_DAY)
    evening = rng.random(len(day)) < EVENING_SHARE
    hour = np.where(
        evening,
        rng.normal(EVENING_HOUR, EVENING_SD_HOURS, len(day)) % 24.0,
        rng.uniform(0.0, 24.0, len(day)),
    )
    planned = day * SECONDS_PER_DAY + hour * 3600.0
    return SessionPlan(
        offsets=offsets,
        user=user,
        first=first,
        session=session,
        session_user=session_user,
        planned_start=planned,
        day=day.astype(np.int32)[session],
    )


def assign_timestamps(
    cfg: SimulatorConfig,
    plan: SessionPlan,
    autoplay: np.ndarray,
    watch_seconds: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """Event start times in microseconds since the epoch, user-major like the plan.

    Returns the times and the number of users whose timeline had to be squeezed into the window
    (zero unless a configuration packs more viewing into a user's days than fits).
    """
    n = len(watch_seconds)
    # Browsing before a chosen title: log-normal, seconds to minutes.
    browse = np.exp(rng.normal(np.log(cfg.browse_gap_median_seconds), 1.0, n))
    gap = np.where(
        autoplay,
        rng.uniform(*AUTOPLAY_COUNTDOWN_SECONDS, n),
        np.clip(browse, 3.0, cfg.browse_gap_max_seconds),
    )
    # Offset inside the session: previous offset + previous playback + this event's gap.
    step = np.zeros(n)
    step[1:] = watch_seconds[:-1] + gap[1:]
    step[plan.first] = 0.0
    offset = _grouped_cumsum(step, plan.session)
    session_last = np.r_[np.flatnonzero(plan.first)[1:] - 1, n - 1]
    session_len = (offset + watch_seconds)[session_last]

    # The break after a session is at least the minimum, often longer (no spike at the minimum).
    pause = cfg.min_session_gap_seconds * (1.0 + rng.standard_exponential(len(session_len)))
    # Sessions start as planned unless the previous one is still running (or just ended):
    # t_k = max(p_k, t_{k-1} + len_{k-1} + pause_{k-1}), unrolled to C_k + max_{j<=k}(p_j - C_j)
    # with C the exclusive per-user cumsum of (len + pause): a grouped cummax, no loop.
    occupied = session_len + pause
    before = _grouped_cumsum(occupied, plan.session_user) - occupied
    slack = pd.Series(plan.planned_start - before).groupby(plan.session_user).cummax()
    start = before + slack.to_numpy()
    seconds = start[plan.session] + offset

    # Fallback for configurations that pack more viewing into a user's days than fit: scale
    # that user's whole timeline into the window (playbacks may then overlap slightly).
    user_end = np.maximum.reduceat(seconds + watch_seconds, plan.offsets[:-1])
    limit = cfg.window_seconds - 1.0
    factor = np.minimum(1.0, limit / np.maximum(user_end, 1e-9))
    squeezed = int((factor < 1.0).sum())
    if squeezed:
        seconds *= factor[plan.user]
    micros = cfg.start_us + np.round(seconds * 1e6).astype(np.int64)
    # Guard the contract window even against rounding at its end.
    end_us = cfg.start_us + int(cfg.n_days) * SECONDS_PER_DAY * 1_000_000 - 1
    return np.minimum(micros, end_us), squeezed


def _grouped_cumsum(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each new value of a sorted `groups` array."""
    total = np.cumsum(values)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    base = np.repeat(total[starts] - values[starts], np.diff(np.r_[starts, len(values)]))
    return total - base
