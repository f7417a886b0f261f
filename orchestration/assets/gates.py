"""Great Expectations gates as blocking asset checks: a failing gate (severity ERROR) stops every
downstream asset of the same run. Each check's metadata names the failing expectations, counts,
a sample of bad rows and links the Data Docs index.html (the data quality report)."""

import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import dagster as dg

from orchestration.gx_resource import GXResource
from training.reward.contract import advantages_path
from validation.paths import landing_result_path
from validation.thresholds import default_thresholds

_DESCRIPTION_LIMIT = 2000  # Dagster shows the description in the run log; keep it readable


def _docs_metadata(gx: GXResource, page: str | None = None) -> dict[str, dg.MetadataValue]:
    """The Data Docs index, and this validation's own page when the gate published it."""
    index = gx.docs_index()
    links = {
        "data_docs": dg.MetadataValue.path(str(index)),
        "data_docs_url": dg.MetadataValue.url(index.as_uri()),
    }
    if page:
        links["data_docs_page"] = dg.MetadataValue.path(page)
    return links


def _failed_md(lines: Iterable[str]) -> dg.MetadataValue:
    items = [f"- {line}" for line in lines]
    return dg.MetadataValue.md("\n".join(items) if items else "(none)")


def gate_check_result(gate, gx: GXResource) -> dg.AssetCheckResult:
    """A GateResult as an asset check result (severity ERROR: blocks downstream on failure)."""
    return dg.AssetCheckResult(
        passed=bool(gate.success),
        severity=dg.AssetCheckSeverity.ERROR,
        description=gate.summary()[:_DESCRIPTION_LIMIT],
        metadata={
            "suite": gate.stage,
            "rows_validated": gate.row_count,
            "expectations": gate.evaluated,
            "failed_expectations": len(gate.failed),
            "failing_rows": len(gate.row_reasons()),
            "failures": _failed_md(f.describe() for f in gate.failed),
            "bad_rows_sample": dg.MetadataValue.md(gate.bad_rows_markdown()),
            **_docs_metadata(gx, str(gate.docs_page) if gate.docs_page else None),
        },
    )


def _landing_result(context: dg.AssetCheckExecutionContext, gx: GXResource) -> dict | None:
    """This run's landing ingestion outcome, if raw_watch_logs ingested deliveries in this run."""
    path = landing_result_path(gx.root())
    if not path.exists():
        return None
    result = json.loads(path.read_text())
    return result if result.get("run_id") == context.run.run_id else None


def _landing_check_result(result: dict, gx: GXResource) -> dg.AssetCheckResult:
    refused = [d for d in result["deliveries"] if d["status"] != "ingested"]
    lines = []
    for d in refused:
        lines.append(
            f"{d['name']}: {d['status']} ({d['reason']}); quarantined to {d['quarantined_to']}"
        )
        lines += [f"  {f}" for f in d["failed_expectations"]]
    samples = "\n\n".join(
        f"**{d['name']}** ({d['bad_rows']} offending rows)\n\n{d['bad_row_sample']}"
        for d in refused
        if d["bad_row_sample"]
    )
    head = (
        f"GX gate 'raw_watch_logs' on {len(result['deliveries'])} landing deliveries: "
        f"{'passed' if not refused else f'FAILED, {len(refused)} refused'}"
    )
    return dg.AssetCheckResult(
        passed=not refused,
        severity=dg.AssetCheckSeverity.ERROR,
        description="\n".join([head, *lines])[:_DESCRIPTION_LIMIT],
        metadata={
            "suite": "raw_watch_logs",
            "deliveries": len(result["deliveries"]),
            "deliveries_refused": len(refused),
            "rows_ingested": result["raw_events_added"],
            "failing_rows": sum(d["bad_rows"] for d in refused),
            "failures": _failed_md(lines),
            "bad_rows_sample": dg.MetadataValue.md(samples or "(no failing rows)"),
            "title_catalogue": result["catalogue_known"],
            **_docs_metadata(
                gx, next((d["data_docs_page"] for d in refused if d["data_docs_page"]), None)
            ),
        },
    )


@dg.asset_check(
    asset="raw_watch_logs",
    blocking=True,
    name="gx_raw_contract",
    description="GX suite `raw_watch_logs`: the raw contract (keys, unique event ids, watch time "
    "within [0, duration x slack], ratings 1-5, no future timestamps, known titles, columns and "
    "types). Landing deliveries are gated one by one before they reach raw.",
)
def gx_raw_contract(context: dg.AssetCheckExecutionContext, gx: GXResource) -> dg.AssetCheckResult:
    landing = _landing_result(context, gx)
    if landing is not None:
        return _landing_check_result(landing, gx)
    from common.paths import raw_watch_logs_dir
    from watchlogs.partitioned import read_watch_logs
    from watchlogs.sources import read_title_catalogue

    table = read_watch_logs(raw_watch_logs_dir(gx.root()))
    gate = gx.gate("raw_watch_logs", table, catalogue=read_title_catalogue(gx.root()))
    return gate_check_result(gate, gx)


def _warehouse_check(asset: list[str], stage: str, description: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(asset),
        blocking=True,
        name=f"gx_{stage}",
        description=description,
    )
    def _check(gx: GXResource) -> dg.AssetCheckResult:
        return gate_check_result(gx.warehouse_gate(stage), gx)

    return _check


gx_staged_events = _warehouse_check(
    ["staging", "stg_watch_events"],
    "staged_events",
    "GX suite `staged_events`: keys, unique ids, watch time, ratings, no future events.",
)
gx_sessions = _warehouse_check(
    ["marts", "fct_watch_sessions"],
    "sessions",
    "GX suite `sessions`: unique sessions, ordered start/end, non-empty, non-negative spans.",
)
gx_sequences = _warehouse_check(
    ["marts", "user_sequences"],
    "sequences",
    "GX suite `sequences`: no empty or short sequences, ordered timestamps, aligned lists, "
    "rewards in range.",
)
gx_splits = _warehouse_check(
    ["marts", "split_temporal_events"],
    "splits",
    "GX suite `splits`: every event on the right side of the temporal split cut-offs, "
    "three non-empty splits.",
)
gx_user_features = _warehouse_check(
    ["marts", "user_reward_stats_daily"],
    "user_features",
    "GX suite `user_features` (Feast offline table): ranges, counts, unique keys, freshness.",
)
gx_item_features = _warehouse_check(
    ["marts", "item_reward_stats_daily"],
    "item_features",
    "GX suite `item_features` (Feast offline table): ranges, counts, unique keys, freshness.",
)


class ModelMetricsGateConfig(dg.Config):
    """The popularity floor of the policy's ndcg@10 (a fraction of popularity's); the default is
    validation/thresholds.py's. Lower it for deliberately short smoke runs."""

    min_ratio_to_popularity: float = default_thresholds().policy_vs_popularity_min_ratio


@dg.asset_check(
    asset="pretrained_policy",
    blocking=True,
    name="gx_model_metrics",
    description="GX suite `model_metrics` on reports/pretrain.json: every ranking metric finite "
    "and in [0, 1]; the policy's ndcg@10 not below the popularity baseline's.",
)
def gx_pretrain_metrics(gx: GXResource, config: ModelMetricsGateConfig) -> dg.AssetCheckResult:
    from common.paths import reports_dir

    report = json.loads((reports_dir(gx.root()) / "pretrain.json").read_text())
    thresholds = replace(
        default_thresholds(), policy_vs_popularity_min_ratio=config.min_ratio_to_popularity
    )
    return gate_check_result(gx.gate("model_metrics", report, thresholds=thresholds), gx)


def parquet_gate_check(
    asset: str | list[str], stage: str, path_of: Callable[[Path], Path], description: str
) -> dg.AssetChecksDefinition:
    """A blocking gate on a Parquet file an asset writes under the data directory."""

    @dg.asset_check(
        asset=dg.AssetKey(asset), blocking=True, name=f"gx_{stage}", description=description
    )
    def _check(gx: GXResource) -> dg.AssetCheckResult:
        import pyarrow.parquet as pq

        return gate_check_result(gx.gate(stage, pq.read_table(path_of(gx.root()))), gx)

    return _check


gx_reward_predictions = parquet_gate_check(
    "reward_model",
    "reward_predictions",
    lambda root: root / "reward" / "test_predictions.parquet",
    "GX suite `reward_predictions` on reward/test_predictions.parquet: r_hat and the user/item "
    "mean baselines in [1, 5], std >= 0, everything finite.",
)
gx_advantages = parquet_gate_check(
    "advantages",
    "advantages",
    advantages_path,
    "GX suite `advantages`: finite, |A| within bounds, per state the policy-weighted advantage "
    "sum_a pi(a|s) A(s, a) within tolerance of zero.",
)
