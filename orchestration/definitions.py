"""The Dagster code location: `dagster dev -w workspace.yaml` loads `defs` from here.

Every module in `orchestration/assets/` is one stage; its assets and asset checks are collected
here, so a new stage joins the graph (and the main job) by adding its module.
"""

from __future__ import annotations

import dagster as dg

from orchestration import assets
from orchestration.resources import RESOURCES
from orchestration.schedules import JOBS, SCHEDULES
from orchestration.sensors import SENSORS

# The main job materializes every asset that exists; later stages join it by being defined.
main_job = dg.define_asset_job(
    "main_job",
    selection=dg.AssetSelection.all(),
    description="Everything, end to end, on the configured source (simulator by default).",
    executor_def=dg.in_process_executor,
)

defs = dg.Definitions(
    assets=dg.load_assets_from_package_module(assets),
    asset_checks=dg.load_asset_checks_from_package_module(assets),
    jobs=[main_job, *JOBS],
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources=RESOURCES,
)
