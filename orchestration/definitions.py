"""The Dagster code location: `dagster dev -w workspace.yaml` loads `defs` from here.

Every package under `orchestration/defs/` is one stage, holding its assets and the asset checks
that guard them; they are collected here, so a stage joins the graph (and the main job) by
being defined there. Loading runs nothing: the dbt manifest is prepared by `make prepare`.

Every run logs through `orchestration.console`: a progress line per finished asset on the console
and the full event log in a file under <data>/logs/ (the UI keeps it too).

Every job runs its steps in one process (`EXECUTOR`), the UI's "Materialize" runs included: the
steps run one after another anyway (each trains or scans on every core, and the DuckDB writers
share one slot), and Dagster's default multiprocess executor would start a process per step,
each importing the code location (about 10 s) before its work.
"""

from __future__ import annotations

import dagster as dg

import orchestration.defs as stages
from orchestration.console import LOGGERS
from orchestration.defs.automation.jobs import EXECUTOR, JOBS
from orchestration.defs.automation.schedules import SCHEDULES
from orchestration.defs.automation.sensors import SENSORS
from orchestration.defs.robustness.location import defs as robustness_defs  # noqa: F401 (-a)
from orchestration.resources import RESOURCES

defs = dg.Definitions(
    assets=dg.load_assets_from_package_module(stages),
    asset_checks=dg.load_asset_checks_from_package_module(stages),
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources=RESOURCES,
    loggers=LOGGERS,
    executor=EXECUTOR,
)
