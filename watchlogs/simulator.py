"""The embedded synthetic watch world: seeded, deterministic, sized by SimulatorConfig.

simulate() builds the hidden world, plans sessions, lets users choose (habit, autoplay, hype and
satisfaction), derives watch time and ratings, lays out timestamps and returns raw logs in the
contract plus the oracle and per-event diagnostics (kept out of the logs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from watchlogs.behaviour import (
    AUTOPLAY_NEXT,
    AUTOPLAY_PROMOTED,
    CHOICE_REASONS,
    CONTINUED,
    simulate_choices,
)
from watchlogs.config import SimulatorConfig
from watchlogs.ids import numbered_ids, padded_width
from watchlogs.oracle import Oracle
from watchlogs.outcomes import ratings, watch_fraction
from watchlogs.schema import conform
from watchlogs.timeline import assign_timestamps, plan_sessions
from watchlogs.world import build_catalogue, build_users, true_satisfaction

__all__ = ["CHOICE_REASONS", "Diagnostics", "SimulationResult", "SimulatorConfig", "simulate"]

_SATISFACTION_BATCH = 1 << 20  # events per batch when gathering factors


@dataclass(frozen=True, eq=False)
class Diagnostics:
    """Per-event truth aligned with the rows of `SimulationResult.events`; never in the logs."""

    choice_reason: np.ndarray  # int8 codes indexing CHOICE_REASONS
    is_autoplay: np.ndarray  # bool
    is_series_continuation: np.ndarray  # bool: next episode, chosen or autoplayed
    satisfaction: np.ndarray  # float32 true s(u, i)
    session_index: np.ndarray  # int64, global session number
    release_day: np.ndarray  # int32, the title's release (days since window start; < 0: before)
    squeezed_users: int  # users whose timeline had to be scaled into the window (normally 0)


@dataclass(frozen=True, eq=False)
class SimulationResult:
    config: SimulatorConfig
    events: pa.Table  # RAW_WATCH_LOG_SCHEMA, sorted by event_ts
    oracle: Oracle
    diagnostics: Diagnostics


def simulate(
    config: SimulatorConfig | None = None, progress: Callable[[str], None] | None = None
) -> SimulationResult:
    cfg = config or SimulatorConfig()
    say = progress or (lambda _msg: None)
    world_seed, plan_seed, choice_seed, outcome_seed, time_seed = np.random.SeedSequence(
        cfg.seed
    ).spawn(5)
    world_rng = np.random.default_rng(world_seed)
    cat = build_catalogue(cfg, world_rng)
    users = build_users(cfg, world_rng)
    say(f"built world: {cfg.n_users} users, {cfg.n_items} titles, {cfg.n_events} events planned")

    mean_active = 0.75 * float(cat.duration.mean()) + cfg.browse_gap_median_seconds
    plan = plan_sessions(cfg, users.n_events, mean_active, np.random.default_rng(plan_seed))
    items, reasons = simulate_choices(cfg, cat, users, plan, choice_seed, progress)
    say("simulated choices")

    outcome_rng = np.random.default_rng(outcome_seed)
    s = _satisfaction(users, cat, plan.user, items)
    autoplay = np.isin(reasons, (AUTOPLAY_NEXT, AUTOPLAY_PROMOTED))
    duration = cat.duration[items]
    watch = np.round(watch_fraction(cfg, s, autoplay, outcome_rng) * duration, 1)
    rating, rated = ratings(cfg, s, outcome_rng)
    ts, squeezed = assign_timestamps(cfg, plan, autoplay, watch, np.random.default_rng(time_seed))

    order = np.lexsort((plan.user, ts))  # chronological; ties broken by user for determinism
    user_ids = numbered_ids("u", np.arange(cfg.n_users), padded_width(cfg.n_users - 1, 6))
    item_ids = numbered_ids("i", np.arange(cfg.n_items), padded_width(cfg.n_items - 1, 5))
    n = len(order)
    events = conform(
        pa.table(
            {
                "event_id": numbered_ids("sim-", np.arange(1, n + 1), padded_width(n, 9)),
                "user_id": user_ids.take(pa.array(plan.user[order])),
                "item_id": item_ids.take(pa.array(items[order])),
                "event_ts": pa.array(
                    ts[order].view("datetime64[us]"), type=pa.timestamp("us", tz="UTC")
                ),
                "watch_seconds": pa.array(watch[order]),
                "item_duration_seconds": pa.array(duration[order]),
                "rating": pa.array(rating[order], type=pa.int8(), mask=~rated[order]),
                "autoplay": pa.array(autoplay[order]),
            }
        )
    )
    reason = reasons[order]
    diagnostics = Diagnostics(
        choice_reason=reason,
        is_autoplay=autoplay[order],
        is_series_continuation=(reason == CONTINUED) | (reason == AUTOPLAY_NEXT),
        satisfaction=s[order].astype(np.float32),
        session_index=plan.session[order],
        release_day=cat.release_day[items[order]],
        squeezed_users=squeezed,
    )
    oracle = Oracle(
        user_ids=np.asarray(user_ids.to_pylist(), dtype=str),
        item_ids=np.asarray(item_ids.to_pylist(), dtype=str),
        user_factors=users.taste,
        item_factors=cat.factors,
        user_bias=users.bias,
        item_bias=cat.quality,
        config=cfg.to_dict(),
    )
    say(f"built {n} events ({int(autoplay.sum())} autoplay)")
    return SimulationResult(config=cfg, events=events, oracle=oracle, diagnostics=diagnostics)


def _satisfaction(users, cat, user_rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    out = np.empty(len(items), dtype=np.float64)
    for lo in range(0, len(items), _SATISFACTION_BATCH):  # bounds the gathered factor memory
        hi = lo + _SATISFACTION_BATCH
        out[lo:hi] = true_satisfaction(users, cat, user_rows[lo:hi], items[lo:hi])
    return out
