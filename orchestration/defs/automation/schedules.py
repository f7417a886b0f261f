"""Schedules: the daily data refresh at 02:00 UTC and the weekly retraining on Mondays."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from orchestration.defs.automation.jobs import daily_refresh_job, weekly_retraining_job
from orchestration.defs.automation.partitions import partitions_start


@dg.schedule(
    name="daily_refresh_job_schedule",
    job=daily_refresh_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="At 02:00 UTC, the daily refresh of yesterday's partition (the last complete day).",
)
def daily_refresh_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    tick = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    day = (tick.astimezone(dt.UTC) - dt.timedelta(days=1)).date().isoformat()
    if day < partitions_start():
        return dg.SkipReason(f"{day} is before the first partition, {partitions_start()}")
    # The run key makes a tick evaluated twice request one run per day.
    return dg.RunRequest(run_key=day, partition_key=day)


weekly_retraining_schedule = dg.ScheduleDefinition(
    job=weekly_retraining_job,
    cron_schedule="0 4 * * 1",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

SCHEDULES = [daily_refresh_schedule, weekly_retraining_schedule]
