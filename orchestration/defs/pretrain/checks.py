"""The pretrained policy's gate: GX suite `model_metrics` on its report."""

import json
from dataclasses import replace

import dagster as dg
from pydantic import Field

from common.layout import DataLayout
from orchestration.gates import gate_check_result
from orchestration.gx_resource import GXResource
from validation.thresholds import default_thresholds


class ModelMetricsGateConfig(dg.Config):
    """The gate's popularity floor. Lower it for deliberately short smoke runs."""

    min_ratio_to_popularity: float = Field(
        default=default_thresholds().policy_vs_popularity_min_ratio,
        description="the policy's test ndcg@10 must reach this fraction of the popularity "
        "baseline's (default: validation/thresholds.py's); 0 turns the floor off",
    )


@dg.asset_check(
    asset="pretrained_policy",
    blocking=True,
    name="gx_model_metrics",
    description="GX suite `model_metrics` on reports/pretrain.json: every ranking metric finite "
    "and in [0, 1]; the policy's ndcg@10 not below the popularity baseline's.",
)
def gx_pretrain_metrics(gx: GXResource, config: ModelMetricsGateConfig) -> dg.AssetCheckResult:
    report = json.loads((DataLayout(gx.root()).reports / "pretrain.json").read_text())
    thresholds = replace(
        default_thresholds(), policy_vs_popularity_min_ratio=config.min_ratio_to_popularity
    )
    return gate_check_result(gx.gate("model_metrics", report, thresholds=thresholds), gx)
