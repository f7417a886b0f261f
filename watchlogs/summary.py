"""Headline figures of a simulated log: how much is habit, and how good the logged choices are."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from watchlogs.behaviour import CHOICE_REASONS
from watchlogs.simulator import SimulationResult


def summarise(result: SimulationResult, k: int = 10) -> dict[str, float]:
    """Shares of event kinds and the normalised true satisfaction of the logged titles.

    `normalised_s@k`: per event (s - random slate) / (best k-slate - random), averaged per user
    and then over users: 0 is what a random title gives, 1 the oracle's top-k mean.
    """
    events, diag, oracle = result.events, result.diagnostics, result.oracle
    n = events.num_rows
    users = events["user_id"].to_numpy(zero_copy_only=False)
    rows = oracle.user_rows(users)
    everyone = oracle.user_ids
    best = oracle.best_slate_value(everyone, k)
    rand = oracle.random_slate_value(everyone, k)
    norm = (diag.satisfaction - rand[rows]) / (best - rand)[rows]
    per_user = np.bincount(rows, weights=norm, minlength=len(everyone))
    counts = np.bincount(rows, minlength=len(everyone))
    watched = counts > 0
    out = {
        "events": float(n),
        "share_autoplay": float(diag.is_autoplay.mean()),
        "share_next_episode": float(diag.is_series_continuation.mean()),
        "share_rated": float(1.0 - events["rating"].null_count / max(n, 1)),
        "mean_true_satisfaction": float(diag.satisfaction.mean()),
        f"normalised_s@{k}": float((per_user[watched] / counts[watched]).mean()),
        "mean_watch_fraction": float(
            pc.mean(pc.divide(events["watch_seconds"], events["item_duration_seconds"])).as_py()
        ),
    }
    for code, name in enumerate(CHOICE_REASONS):
        picked = diag.choice_reason == code
        out[f"share_{name}"] = float(picked.mean())
        if picked.any():
            out[f"normalised_s@{k}|{name}"] = float(norm[picked].mean())
    return out
