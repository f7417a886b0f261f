"""Schedules: the daily data refresh at 02:00 UTC and the weekly retraining on Mondays."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.automation.jobs import daily_refresh_job, weekly_retraining_job

# At 02:00 UTC each day, the run of yesterday's partition (the last complete UTC day).
daily_refresh_schedule = dg.build_schedule_from_partitioned_job(
    daily_refresh_job,
    hour_of_day=2,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

weekly_retraining_schedule = dg.ScheduleDefinition(
    job=weekly_retraining_job,
    cron_schedule="0 4 * * 1",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

SCHEDULES = [daily_refresh_schedule, weekly_retraining_schedule]
