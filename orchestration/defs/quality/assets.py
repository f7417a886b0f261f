"""The data quality report: GX Data Docs rebuilt after the gated stages, and quality.json."""

import dagster as dg

from orchestration.gx_resource import GXResource

# Every gated asset: the report runs after their gates (and is skipped when one of them fails;
# a failing gate builds Data Docs itself, so the failure can still be read there).
_GATED = [
    dg.AssetKey("raw_watch_logs"),
    dg.AssetKey(["staging", "stg_watch_events"]),
    dg.AssetKey(["marts", "fct_watch_sessions"]),
    dg.AssetKey(["marts", "user_sequences"]),
    dg.AssetKey(["marts", "split_temporal_events"]),
    dg.AssetKey(["marts", "user_reward_stats_daily"]),
    dg.AssetKey(["marts", "item_reward_stats_daily"]),
    dg.AssetKey("pretrained_policy"),
    dg.AssetKey("reward_model"),
    dg.AssetKey("advantages"),
]


@dg.asset(
    group_name="reports",
    deps=_GATED,
    kinds={"json", "html"},
    description="GX Data Docs (the data quality report) rebuilt under <data>/gx/uncommitted/"
    "data_docs/local_site/, and every suite's latest outcome in <data>/reports/quality.json. "
    "Also: `python -m validation.docs`.",
)
def data_quality_report(gx: GXResource) -> dg.MaterializeResult:
    from validation.docs import rebuild_quality_report

    index, report, figures = rebuild_quality_report(gx.root())
    rows = "\n".join(
        f"| {name} | {'passed' if s['passed'] else 'FAILED'} | {s['expectations']} | "
        f"{s['failed_expectations']} |"
        for name, s in figures["suites"].items()
    )
    return dg.MaterializeResult(
        metadata={
            "suites_passed": figures["suites_passed"],
            "suites_failed": figures["suites_failed"],
            "suites": dg.MetadataValue.md(
                "| suite | outcome | expectations | failed |\n| --- | --- | --- | --- |\n" + rows
            ),
            "data_docs": dg.MetadataValue.path(str(index)),
            "data_docs_url": dg.MetadataValue.url(index.as_uri()),
            "report": dg.MetadataValue.path(str(report)),
        }
    )
