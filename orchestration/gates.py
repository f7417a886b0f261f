"""Great Expectations gates as blocking asset checks: a failing gate (severity ERROR) stops every
downstream asset of the same run. Each check's metadata names the failing expectations, counts,
a sample of bad rows and links the Data Docs index.html (the data quality report).

The shared machinery; each stage's gates live beside its assets (`defs/<stage>/checks.py`)."""

from collections.abc import Callable, Iterable
from pathlib import Path

import dagster as dg

from common.layout import DataLayout
from orchestration.gx_resource import GXResource

DESCRIPTION_LIMIT = 2000  # Dagster shows the description in the run log; keep it readable


def docs_metadata(gx: GXResource, page: str | None = None) -> dict[str, dg.MetadataValue]:
    """The Data Docs index, and this validation's own page when the gate published it."""
    index = gx.docs_index()
    links = {
        "data_docs": dg.MetadataValue.path(str(index)),
        "data_docs_url": dg.MetadataValue.url(index.as_uri()),
    }
    if page:
        links["data_docs_page"] = dg.MetadataValue.path(page)
    return links


def failed_md(lines: Iterable[str]) -> dg.MetadataValue:
    items = [f"- {line}" for line in lines]
    return dg.MetadataValue.md("\n".join(items) if items else "(none)")


def gate_check_result(gate, gx: GXResource) -> dg.AssetCheckResult:
    """A GateResult as an asset check result (severity ERROR: blocks downstream on failure)."""
    return dg.AssetCheckResult(
        passed=bool(gate.success),
        severity=dg.AssetCheckSeverity.ERROR,
        description=gate.summary()[:DESCRIPTION_LIMIT],
        metadata={
            "suite": gate.stage,
            "rows_validated": gate.row_count,
            "expectations": gate.evaluated,
            "failed_expectations": len(gate.failed),
            "failing_rows": len(gate.row_reasons()),
            "failures": failed_md(f.describe() for f in gate.failed),
            "bad_rows_sample": dg.MetadataValue.md(gate.bad_rows_markdown()),
            **docs_metadata(gx, str(gate.docs_page) if gate.docs_page else None),
        },
    )


def warehouse_gate_check(
    asset: list[str], stage: str, description: str
) -> dg.AssetChecksDefinition:
    """A blocking gate on a warehouse table (the GX suite `stage` reads it through DuckDB)."""

    @dg.asset_check(
        asset=dg.AssetKey(asset),
        blocking=True,
        name=f"gx_{stage}",
        description=description,
    )
    def _check(gx: GXResource) -> dg.AssetCheckResult:
        return gate_check_result(gx.warehouse_gate(stage), gx)

    return _check


def parquet_gate_check(
    asset: str | list[str], stage: str, path_of: Callable[[DataLayout], Path], description: str
) -> dg.AssetChecksDefinition:
    """A blocking gate on a Parquet file an asset writes under the data directory."""

    @dg.asset_check(
        asset=dg.AssetKey(asset), blocking=True, name=f"gx_{stage}", description=description
    )
    def _check(gx: GXResource) -> dg.AssetCheckResult:
        import pyarrow.parquet as pq

        return gate_check_result(gx.gate(stage, pq.read_table(path_of(DataLayout(gx.root())))), gx)

    return _check
