"""Every threshold the expectation suites use, in one place.

The raw-contract limits dbt also enforces (watch-time slack, future tolerance, minimum sequence
length) are read from the dbt vars in transforms/dbt_project.yml, so GX and dbt cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from common.paths import PROJECT_ROOT

DBT_PROJECT_FILE = PROJECT_ROOT / "transforms" / "dbt_project.yml"


@dataclass(frozen=True)
class Thresholds:
    # raw contract and staged events (shared with dbt)
    watch_seconds_slack: float  # watch_seconds <= item_duration_seconds * slack
    future_tolerance_hours: float  # event_ts may lie at most this far after "now"
    min_sequence_length: int  # shorter user sequences are left out of the sequence tables
    rating_min: int = 1
    rating_max: int = 5
    # rewards (1-5) and predictions
    reward_min: float = 1.0
    reward_max: float = 5.0
    # Feast feature tables: the newest row must be this close to the data's last event
    feature_freshness_days: float = 2.0
    # advantages: |A| <= reward range; the policy-weighted advantage of a state sums to ~0
    advantage_abs_max: float = 4.0
    state_weighted_advantage_tolerance: float = 1e-3
    # model metrics: ranking metrics lie in [0, 1]; the policy's ndcg@10 must reach this
    # fraction of the popularity baseline's on the same split
    metric_min: float = 0.0
    metric_max: float = 1.0
    policy_vs_popularity_min_ratio: float = 1.0
    # how many failing rows a gate shows in its report
    bad_row_sample: int = 10

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def dbt_vars(path: Path = DBT_PROJECT_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()).get("vars", {})


@lru_cache(maxsize=1)
def default_thresholds() -> Thresholds:
    """The thresholds every gate uses unless a caller passes its own."""
    dbt = dbt_vars()
    return Thresholds(
        watch_seconds_slack=float(dbt["watch_seconds_slack"]),
        future_tolerance_hours=float(dbt["future_tolerance_hours"]),
        min_sequence_length=int(dbt["min_sequence_length"]),
    )
