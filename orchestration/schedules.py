"""Automation: the daily data refresh and the weekly retraining, as jobs with schedules.

Stages are selected by asset group, so a stage joins its job by its group name alone:
daily = ingest -> warehouse -> gates -> features; weekly = pretrain -> reward -> post-training.
"""

from __future__ import annotations

import dagster as dg

from orchestration.partitions import watch_log_days

TRAINING_GROUPS = ("pretrain", "reward", "posttrain")

daily_refresh_job = dg.define_asset_job(
    "daily_refresh_job",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups(*TRAINING_GROUPS),
    description="Ingest new watch logs, rebuild the warehouse, run the gates, refresh features.",
    executor_def=dg.in_process_executor,
    # By watch-log day (raw_watch_logs and marts/fct_reward_events); runs without a partition
    # (the landing sensor's, `make run`) ingest the whole source and refresh every changed date.
    partitions_def=watch_log_days,
)

weekly_retraining_job = dg.define_asset_job(
    "weekly_retraining_job",
    selection=dg.AssetSelection.groups(*TRAINING_GROUPS),
    description="Pretrain, reward model, advantages, A-SFT and baselines, evaluation.",
    executor_def=dg.in_process_executor,
)

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

JOBS = [daily_refresh_job, weekly_retraining_job]
SCHEDULES = [daily_refresh_schedule, weekly_retraining_schedule]
