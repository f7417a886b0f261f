"""The raw gate: GX suite `raw_watch_logs` on the raw partitions, or on this run's landing
deliveries one by one when the run ingested the landing folder."""

import json

import dagster as dg

from common.layout import DataLayout
from orchestration.gates import DESCRIPTION_LIMIT, docs_metadata, failed_md, gate_check_result
from orchestration.gx_resource import GXResource


def _landing_result(context: dg.AssetCheckExecutionContext, gx: GXResource) -> dict | None:
    """This run's landing ingestion outcome, if raw_watch_logs ingested deliveries in this run."""
    path = DataLayout(gx.root()).landing_result
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
        description="\n".join([head, *lines])[:DESCRIPTION_LIMIT],
        metadata={
            "suite": "raw_watch_logs",
            "deliveries": len(result["deliveries"]),
            "deliveries_refused": len(refused),
            "rows_ingested": result["raw_events_added"],
            "failing_rows": sum(d["bad_rows"] for d in refused),
            "failures": failed_md(lines),
            "bad_rows_sample": dg.MetadataValue.md(samples or "(no failing rows)"),
            "title_catalogue": result["catalogue_known"],
            **docs_metadata(
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
    from watchlogs.partitioned import read_watch_logs
    from watchlogs.sources import read_title_catalogue

    table = read_watch_logs(DataLayout(gx.root()).raw_watch_logs)
    gate = gx.gate("raw_watch_logs", table, catalogue=read_title_catalogue(gx.root()))
    return gate_check_result(gate, gx)
