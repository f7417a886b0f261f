"""The robustness study as its own Dagster Definitions, off main_job.

main_job materializes every asset of the main code location (`AssetSelection.all()`), so an
asset defined there would run this hour-long study on every `make run`. The study's asset is
therefore built here, not at module level (the main location's package scan finds module-level
assets only), and lives in `defs` below with its own job; orchestration/definitions.py exposes
it as `robustness_defs`:

    python -m orchestration.launch --job robustness_job -c configs/robustness.yaml

It reads what the main job built (the pretrained policy, the warehouse, the Feast store) from
the same data directory; those assets are external here, named by key.
"""

import dagster as dg

from common.paths import data_dir
from common.tracking import tracking_uri
from orchestration.config import config_from
from orchestration.defs.automation.jobs import EXECUTOR
from orchestration.metadata import image
from training.robustness.settings import RobustnessSettings
from training.robustness.study import run_robustness_study
from watchlogs.sources import dataset_name

GROUP = "robustness"
RobustnessConfig = config_from(RobustnessSettings, "RobustnessConfig")


def _study_asset() -> dg.AssetsDefinition:
    @dg.asset(
        name="robustness_study",
        group_name=GROUP,
        kinds={"pytorch", "mlflow"},
        deps=[dg.AssetKey("pretrained_policy"), dg.AssetKey("feature_registry")],
        description=(
            "Every method retrained at every level of each reward corruption (noise, habit "
            "bias), against a reward model and judges retrained on the corrupted log: true "
            "satisfaction, judge rewards, NDCG@10, KL per level, the judges' validity, the "
            "crossovers; table, plot and CSVs in reports/robustness/ and MLflow (experiment "
            "`robustness`)."
        ),
    )
    def robustness_study(
        context: dg.AssetExecutionContext, config: RobustnessConfig
    ) -> dg.MaterializeResult:
        root = data_dir()
        result = run_robustness_study(config.settings(), root, dataset_name(root),
                                      log=context.log.info,
                                      tags={"dagster_run_id": context.run.run_id})  # fmt: skip
        files = result.files
        return dg.MaterializeResult(
            metadata={
                "results": dg.MetadataValue.md(result.table_md),
                "plot": image(files["plot"], "robustness"),
                "crossovers": dg.MetadataValue.md(
                    "".join(f"- {c}\n" for c in result.report["crossovers"])
                ),
                **{name: dg.MetadataValue.path(str(p)) for name, p in files.items()},
                "mlflow_study_run_id": result.study_run_id,
                "mlflow_tracking_uri": tracking_uri(root),
                "seconds_total": result.seconds["total"],
            }
        )

    return robustness_study


robustness_job = dg.define_asset_job(
    "robustness_job",
    selection=dg.AssetSelection.groups(GROUP),
    description="The reward-corruption robustness study (configs/robustness.yaml).",
)

defs = dg.Definitions(assets=[_study_asset()], jobs=[robustness_job], executor=EXECUTOR)
