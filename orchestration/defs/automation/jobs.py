"""The jobs: everything (main_job), the daily data refresh and the weekly retraining.

Stages are selected by asset group, so a stage joins its job by its group name alone:
daily = ingest -> warehouse -> gates -> features; weekly = pretrain -> reward -> post-training.
"""

from __future__ import annotations

import dagster as dg

from common.memory import release_memory
from orchestration.console import LOGGER_CONFIG


@dg.success_hook(name="release_memory")
def release_memory_hook(context: dg.HookContext) -> None:
    """After every step: the jobs run their steps in one process, so memory a step freed goes
    back to the system before the next one starts (common/memory.py)."""
    release_memory()


# Every job's steps share one process and release memory between steps. The code locations
# give EXECUTOR to every job, the implicit asset job of the UI's "Materialize" included.
EXECUTOR = dg.in_process_executor
HOOKS = {release_memory_hook}

# The main job materializes every asset that exists; later stages join it by being defined.
main_job = dg.define_asset_job(
    "main_job",
    selection=dg.AssetSelection.all(),
    description="Everything, end to end, on the configured source (simulator by default).",
    hooks=HOOKS,
    config=LOGGER_CONFIG,
)

TRAINING_GROUPS = ("pretrain", "reward", "posttrain")

daily_refresh_job = dg.define_asset_job(
    "daily_refresh_job",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups(*TRAINING_GROUPS),
    description="Ingest new watch logs, rebuild the warehouse, run the gates, refresh features.",
    hooks=HOOKS,
    config=LOGGER_CONFIG,
    # Partitioned by watch-log day, as inferred from its partitioned assets (raw_watch_logs,
    # marts/fct_reward_events: `watch_log_days`); runs without a partition (the landing sensor's,
    # `make run`) ingest the whole source and refresh every changed date.
)

weekly_retraining_job = dg.define_asset_job(
    "weekly_retraining_job",
    selection=dg.AssetSelection.groups(*TRAINING_GROUPS),
    description="Pretrain, reward model, advantages, A-SFT and baselines, evaluation.",
    hooks=HOOKS,
    config=LOGGER_CONFIG,
)

JOBS = [main_job, daily_refresh_job, weekly_retraining_job]
