"""Summary statistics over seeds."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def mean_ci(values: list[float] | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t confidence interval (0 for a single value)."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return float(x.mean()), 0.0
    t = float(stats.t.ppf(0.5 + level / 2, df=len(x) - 1))
    return float(x.mean()), float(t * x.std(ddof=1) / math.sqrt(len(x)))
