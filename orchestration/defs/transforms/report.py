"""The data report: `<data>/reports/data.json` summarises what the warehouse holds."""

import dagster as dg

from common.paths import warehouse_path
from common.reports import write_report
from common.warehouse import connect_read_only, data_report_figures

# The dbt models the report reads, keyed as dagster-dbt names them: [schema, model].
_WAREHOUSE_INPUTS = [
    dg.AssetKey(["staging", "stg_watch_events"]),
    dg.AssetKey(["staging", "quarantine_watch_events"]),
    dg.AssetKey(["marts", "fct_watch_sessions"]),
    dg.AssetKey(["marts", "fct_reward_events"]),
    dg.AssetKey(["marts", "user_sequences"]),
    dg.AssetKey(["marts", "split_cutoffs"]),
    dg.AssetKey(["marts", "split_temporal_events"]),
    dg.AssetKey(["marts", "split_leave_one_out_events"]),
]


@dg.asset(
    group_name="reports",
    deps=_WAREHOUSE_INPUTS,
    kinds={"duckdb", "json"},
    description="Headline figures of the data stage (events, users, titles, sessions, "
    "quarantined rows, date range, split sizes) written to <data>/reports/data.json and .md.",
)
def data_report() -> dg.MaterializeResult:
    with connect_read_only(warehouse_path()) as con:
        figures = data_report_figures(con)
    path = write_report("data", figures)
    flat = {k: v for k, v in figures.items() if isinstance(v, (int, float, str))}
    return dg.MaterializeResult(metadata={**flat, "report": dg.MetadataValue.path(str(path))})
