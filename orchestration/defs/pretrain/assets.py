"""The pretrained policy: behaviour cloning (next-item prediction) on the warehouse sequences."""

import dagster as dg

from common.paths import data_dir, warehouse_path
from common.reports import write_report
from common.tracking import tracking_uri
from common.warehouse import connect_read_only, training_inputs
from orchestration.config import config_from
from orchestration.metadata import image
from training.pretrain.stage import PretrainSettings, markdown_table, run_pretraining
from watchlogs.sources import dataset_name

PretrainConfig = config_from(PretrainSettings, "PretrainConfig")


@dg.asset(
    group_name="pretrain",
    kinds={"pytorch", "mlflow"},
    deps=[dg.AssetKey(["marts", "user_sequences"]), dg.AssetKey(["marts", "split_cutoffs"])],
    description=(
        "HSTU-style generative recommender trained by next-item prediction (behaviour cloning) "
        "with sampled softmax; checkpoint per epoch (a re-run resumes), early stopping on valid "
        "NDCG@10; full-catalogue evaluation with seen items excluded, beside a popularity "
        "baseline. Runs tracked in MLflow (experiment `pretrain`); report in reports/pretrain.json."
        " Config `ddp_processes` > 1 trains each run under torchrun (DDP, gloo, CPU)."
    ),
)
def pretrained_policy(
    context: dg.AssetExecutionContext, config: PretrainConfig
) -> dg.MaterializeResult:
    root = data_dir()
    settings = config.settings()
    with connect_read_only(warehouse_path()) as con:
        sequences, valid_start, test_start = training_inputs(con)
    dataset = dataset_name(root)
    result = run_pretraining(
        sequences,
        valid_start,
        test_start,
        settings,
        root=root,
        dataset=dataset,
        log=context.log.info,
        tags={"dagster_run_id": context.run.run_id},
    )
    write_report("pretrain", result.report)
    policy = result.report["test"][dataset][settings.policy_split][settings.kinds[0]]
    return dg.MaterializeResult(
        metadata={
            "results": dg.MetadataValue.md(markdown_table(result.report)),
            "test_ndcg@10": policy["ndcg@10"]["mean"],
            "test_hr@10": policy["hr@10"]["mean"],
            "mlflow_run_id": result.policy_run_id,
            "ddp_processes": settings.ddp_processes,
            "mlflow_tracking_uri": tracking_uri(root),
            "policy_dir": dg.MetadataValue.path(str(result.policy_dir)),
            "training_curve": image(result.curve_png, "training curve"),
        }
    )
