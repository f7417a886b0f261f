"""The Dagster code location: `dagster dev -w workspace.yaml` loads `defs` from here."""

from __future__ import annotations

import dagster as dg

from orchestration.assets.pretrain import pretrained_policy
from orchestration.assets.raw import raw_watch_logs
from orchestration.assets.reports import data_report
from orchestration.assets.transforms import warehouse_models
from orchestration.resources import RESOURCES

# The main job materializes every asset that exists; later stages join it by being defined.
main_job = dg.define_asset_job(
    "main_job",
    selection=dg.AssetSelection.all(),
    description="Everything, end to end, on the configured source (simulator by default).",
    executor_def=dg.in_process_executor,
)

defs = dg.Definitions(
    assets=[raw_watch_logs, warehouse_models, data_report, pretrained_policy],
    jobs=[main_job],
    resources=RESOURCES,
)
