"""The reward model: a K-member ensemble of shallow two-tower heads on the frozen pretrained
policy and the Feast reward features, plus a judge ensemble trained on the other half of the
users; evaluated on the future-dated test events against user-mean and title-mean baselines."""

import dagster as dg

from common.paths import data_dir
from common.reports import write_report
from common.tracking import tracking_uri
from orchestration.config import config_from
from orchestration.metadata import image
from training.reward.stage import RewardSettings, run_reward_stage
from watchlogs.sources import dataset_name

RewardConfig = config_from(RewardSettings, "RewardConfig")


@dg.asset(
    group_name="reward",
    kinds={"pytorch", "mlflow"},
    # online_features: the Feast registry and online store (after feature_registry) are built.
    deps=[dg.AssetKey("pretrained_policy"), dg.AssetKey("online_features")],
    description=(
        "Reward model: K shallow two-tower heads (seeds + bootstrap of users) on the frozen "
        "pretrained policy's state, the title embedding and point-in-time Feast features, "
        "predicting the 1-5 reward of the next event; a judge ensemble on the other half of the "
        "users. Evaluated on the future-dated test split against user-mean / title-mean "
        "baselines (and the simulator's true satisfaction). MLflow experiment `reward`; report "
        "in reports/reward.json; models under models/reward_model and models/reward_judge."
    ),
)
def reward_model(context: dg.AssetExecutionContext, config: RewardConfig) -> dg.MaterializeResult:
    root = data_dir()
    dataset = dataset_name(root)
    result = run_reward_stage(
        config.settings(),
        root=root,
        log=context.log.info,
        tags={"dagster_run_id": context.run.run_id},
        dataset=dataset,
    )
    write_report("reward", result.report)
    table = result.report["test"][dataset]
    metadata = {
        "results": dg.MetadataValue.md(result.table_markdown),
        "test_events": result.report["test_events"],
        "mlflow_run_id": result.run_id,
        "mlflow_tracking_uri": tracking_uri(root),
        "model_dir": dg.MetadataValue.path(str(result.model_dir)),
        "judge_dir": dg.MetadataValue.path(str(result.judge_dir)),
        "calibration_plot": image(result.calibration_png, "reward calibration"),
        "test_predictions": dg.MetadataValue.path(str(result.predictions_path)),
        "seconds": result.report["seconds"]["total"],
    }
    for predictor in ("reward_model", "reward_judge", "user_mean", "title_mean", "global_mean"):
        metadata[f"rmse_{predictor}"] = table[predictor]["rmse"]
    return dg.MaterializeResult(metadata=metadata)
