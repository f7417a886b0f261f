"""Daily partitions of the watch logs: one per UTC day, shared by the raw asset and the
incremental dbt models, so a backfill of a date range moves both in step.

The first day is ASFT_PARTITIONS_START (YYYY-MM-DD, default 2025-01-01, the simulator's default
start_date); days before it cannot be selected as partitions (an unpartitioned run still
ingests them).
"""

import datetime as dt
import os

import dagster as dg

from watchlogs.partitioned import DayWindow
from watchlogs.simulator import SimulatorConfig

PARTITIONS_START_ENV = "ASFT_PARTITIONS_START"
# The partition window as dbt reads it (transforms/macros/incremental.sql), both inclusive.
WINDOW_ENV = ("ASFT_EVENT_DATE_FROM", "ASFT_EVENT_DATE_TO")


def partitions_start() -> str:
    """The first partition day: ASFT_PARTITIONS_START or the simulator's default start_date."""
    value = os.environ.get(PARTITIONS_START_ENV) or SimulatorConfig().start_date
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise ValueError(f"{PARTITIONS_START_ENV}={value!r} is not a date (YYYY-MM-DD)") from exc


watch_log_days = dg.DailyPartitionsDefinition(start_date=partitions_start(), timezone="UTC")


def partition_days(context: dg.AssetExecutionContext) -> DayWindow | None:
    """The run's partition window as (first day, last day), both inclusive; None when the run
    has no partition (an unpartitioned run: the whole source, every changed date)."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return None
    window = context.partition_time_window  # [start, end): end is the next day's midnight
    return DayWindow(window.start.date(), (window.end - dt.timedelta(days=1)).date())


def window_env(days: DayWindow | None) -> dict[str, str | None]:
    """WINDOW_ENV's values for a run's window: 'YYYY-MM-DD' each, or None (unset) when the run
    has no partition."""
    values = (days.first.isoformat(), days.last.isoformat()) if days else (None, None)
    return dict(zip(WINDOW_ENV, values, strict=True))
