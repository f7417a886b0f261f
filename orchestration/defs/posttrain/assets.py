"""Post-training: the advantages, and the study (A-SFT and the baselines over betas and seeds)
with its evaluation and the champion decision."""

import dagster as dg

from common.paths import data_dir
from common.tracking import tracking_uri
from orchestration.config import config_from
from orchestration.metadata import image
from training.posttrain.stage import (
    AdvantagesSettings,
    PosttrainSettings,
    run_advantages,
    run_posttrain_study,
)
from watchlogs.sources import dataset_name

_REWARD_MODEL = dg.AssetKey("reward_model")

AdvantagesConfig = config_from(AdvantagesSettings, "AdvantagesConfig")
PosttrainStudyConfig = config_from(PosttrainSettings, "PosttrainStudyConfig")


@dg.asset(
    group_name="posttrain",
    kinds={"pytorch", "parquet"},
    deps=[dg.AssetKey("pretrained_policy"), _REWARD_MODEL],
    description=(
        "A = r_hat(s, a) - V(s) for every logged training event of the temporal split, with "
        "V(s) = E_{a ~ pi_pretrained} r_hat(s, a) over the catalogue; Parquet under "
        "<data>/advantages/."
    ),
)
def advantages(context: dg.AssetExecutionContext, config: AdvantagesConfig) -> dg.MaterializeResult:
    result = run_advantages(
        data_dir(),
        config.settings(),
        log=context.log.info,
    )
    stats = result.stats
    table = "| statistic | value |\n| --- | --- |\n" + "\n".join(
        f"| {k} | {v:.4g} |" for k, v in stats.items()
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": stats["rows"],
            "stats": dg.MetadataValue.md(table),
            "mean": stats["mean"],
            "std": stats["std"],
            "fraction_positive": stats["fraction_positive"],
            "max_abs_policy_weighted_advantage": result.state_sum_max_abs,
            "histogram": image(result.histogram, "advantages"),
            "histogram_path": dg.MetadataValue.path(str(result.histogram)),
            "path": dg.MetadataValue.path(str(result.path)),
            "seconds": round(result.seconds, 1),
        }
    )


@dg.asset(
    group_name="posttrain",
    kinds={"pytorch", "mlflow"},
    deps=[advantages, _REWARD_MODEL],
    description=(
        "Every method x beta x seed fine-tuned from the pretrained policy, then evaluated: "
        "NDCG/HR/MRR on above-median future targets, the judge ensemble's reward of the top-10, "
        "the simulator's normalised true satisfaction, KL and top-10 overlap vs the pretrained "
        "policy. Results table and beta-sweep plot in MLflow (experiment `posttrain`) and "
        "reports/posttrain.json; the best policy is registered (alias `champion`) only where it "
        "beats BC."
    ),
)
def posttrained_policies(
    context: dg.AssetExecutionContext, config: PosttrainStudyConfig
) -> dg.MaterializeResult:
    root = data_dir()
    result = run_posttrain_study(
        config.settings(),
        root,
        dataset_name(root),
        log=context.log.info,
        tags={"dagster_run_id": context.run.run_id},
    )
    champion = result.champion
    return dg.MaterializeResult(
        metadata={
            "results": dg.MetadataValue.md(result.table_md),
            "beta_sweep": image(result.plot, "beta sweep"),
            "beta_sweep_path": dg.MetadataValue.path(str(result.plot)),
            "table_csv": dg.MetadataValue.path(str(result.table_csv)),
            "table_md": dg.MetadataValue.path(str(result.table_md_path)),
            "champion": champion.get("label") or "none",
            "champion_registered": champion["registered"],
            "champion_reason": champion["reason"],
            "champion_model_version": str(champion.get("model_version", "none")),
            "mlflow_study_run_id": result.study_run_id,
            "mlflow_policy_runs": len(result.policy_run_ids),
            "mlflow_tracking_uri": tracking_uri(root),
            "seconds_train": result.seconds["train"],
            "seconds_evaluate": result.seconds["evaluate"],
        }
    )
