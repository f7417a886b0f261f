"""`run_gate`: validate a stage's data with its GX suite and say exactly what failed.

Pure (no Dagster): the Dagster asset checks and the landing ingestion call it. The validation
result is stored in the GX context and Data Docs are updated on every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from common.paths import data_dir, warehouse_path
from common.warehouse import connect_read_only
from validation.context import (
    build_data_docs,
    docs_index_path,
    latest_docs_page,
    run_checkpoint,
)
from validation.suites import suite_for
from validation.thresholds import Thresholds, default_thresholds
from validation.views import VIEWS, read_warehouse_stage


@dataclass
class FailedExpectation:
    expectation: str  # the GX expectation type, e.g. expect_column_values_to_be_between
    column: str | None
    reason: str  # what it means, in the quarantine's words (suite meta)
    level: str  # "file": about the table as a whole; "row": names failing rows
    unexpected_count: int | None
    observed: Any
    rows: list[int]  # positions of the failing rows in the validated frame
    kwargs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # GX could not evaluate it (e.g. the column is missing)

    @property
    def name(self) -> str:
        columns = self.column or ",".join(
            str(self.kwargs[k]) for k in ("column_A", "column_B", "column_list") if k in self.kwargs
        )
        return f"{self.expectation}({columns})" if columns else self.expectation

    def describe(self) -> str:
        if self.unexpected_count is not None:
            return f"{self.name} [{self.reason}]: {self.unexpected_count} row(s)"
        detail = self.error or f"observed {self.observed!r}"
        return f"{self.name} [{self.reason}]: {detail}"


@dataclass
class GateResult:
    stage: str
    success: bool
    row_count: int
    evaluated: int
    failed: list[FailedExpectation]
    frame: pd.DataFrame = field(repr=False)
    docs_index: Path
    validated_at: str
    docs_page: Path | None = None  # this validation's own page, when Data Docs were rebuilt
    thresholds: dict[str, Any] = field(default_factory=dict)

    @property
    def file_level_failures(self) -> list[FailedExpectation]:
        return [f for f in self.failed if f.level == "file"]

    def row_reasons(self) -> dict[int, list[FailedExpectation]]:
        """Failing row position -> the expectations it breaks."""
        by_row: dict[int, list[FailedExpectation]] = {}
        for failure in self.failed:
            for row in failure.rows:
                by_row.setdefault(int(row), []).append(failure)
        return dict(sorted(by_row.items()))

    def bad_rows(self, limit: int | None = None) -> pd.DataFrame:
        """The failing rows with `quarantine_reason` and `failed_expectations` columns."""
        reasons = self.row_reasons()
        positions = list(reasons)[:limit] if limit is not None else list(reasons)
        rows = self.frame.iloc[positions].copy()
        rows.insert(0, "row", positions)
        rows["quarantine_reason"] = [
            "; ".join(dict.fromkeys(f.reason for f in reasons[p])) for p in positions
        ]
        rows["failed_expectations"] = ["; ".join(f.name for f in reasons[p]) for p in positions]
        return rows

    def bad_rows_markdown(self, limit: int = 10) -> str:
        sample = self.bad_rows(limit)
        if sample.empty:
            return "(no failing rows)"
        return sample.astype("string").fillna("null").to_markdown(index=False)

    def summary(self) -> str:
        head = (
            f"GX gate '{self.stage}': "
            f"{'passed' if self.success else 'FAILED'} "
            f"({len(self.failed)} of {self.evaluated} expectations failed on {self.row_count} rows)"
        )
        lines = [head, *[f"  - {f.describe()}" for f in self.failed]]
        bad = list(self.row_reasons())
        if bad:
            shown = ", ".join(map(str, bad[:20])) + (" ..." if len(bad) > 20 else "")
            lines.append(f"  failing rows ({len(bad)}): {shown}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "success": self.success,
            "rows": self.row_count,
            "expectations": self.evaluated,
            "failed": [f.describe() for f in self.failed],
            "failing_rows": len(self.row_reasons()),
            "validated_at": self.validated_at,
            "data_docs": str(self.docs_index),
            "data_docs_page": str(self.docs_page or ""),
        }


def _failure(result: Any) -> FailedExpectation:
    config = result.expectation_config
    meta = config.meta or {}
    detail = result.result or {}
    error = None
    if result.exception_info and result.exception_info.get("raised_exception"):
        error = str(result.exception_info.get("exception_message", "")).splitlines()[0]
    rows = detail.get("unexpected_index_list") or []
    return FailedExpectation(
        expectation=config.type,
        column=config.kwargs.get("column"),
        reason=meta.get("reason", config.type),
        level=meta.get("level", "row" if rows else "file"),
        unexpected_count=detail.get("unexpected_count"),
        observed=detail.get("observed_value"),
        rows=[int(r) for r in rows if isinstance(r, (int, float))],
        kwargs={k: v for k, v in config.kwargs.items() if k not in ("batch_id",)},
        error=error,
    )


def validate_frame(
    stage: str,
    frame: pd.DataFrame,
    thresholds: Thresholds | None = None,
    root: Path | None = None,
    update_docs: bool | None = None,
) -> GateResult:
    """Validate an already-prepared frame against the stage's suite (a GX checkpoint).

    Data Docs: `update_docs=None` rebuilds them only when the gate fails (so a failure can always
    be read there; passing gates are published by the next `build_data_docs`), True always,
    False never.
    """
    t = thresholds or default_thresholds()
    frame = frame.reset_index(drop=True)
    suite = suite_for(stage, t)
    result = run_checkpoint(stage, suite, frame, root, update_docs=bool(update_docs))
    docs_built = bool(update_docs)
    if update_docs is None and not result.success:
        build_data_docs(root)
        docs_built = True
    failed = [_failure(r) for r in result.results if not r.success]
    return GateResult(
        stage=stage,
        success=bool(result.success),
        row_count=len(frame),
        evaluated=len(result.results),
        failed=failed,
        frame=frame,
        docs_index=docs_index_path(root),
        validated_at=datetime.now(UTC).isoformat(),
        docs_page=latest_docs_page(suite.name, root) if docs_built else None,
        thresholds=t.as_dict(),
    )


def run_gate(
    stage: str,
    data: Any,
    thresholds: Thresholds | None = None,
    root: Path | None = None,
    update_docs: bool | None = None,
    **view_args: Any,
) -> GateResult:
    """Validate `data` (Arrow table, DataFrame, or a report dict for model metrics).

    The stage's view adds its derived columns first (see validation.views); `update_docs` as in
    `validate_frame`; `view_args` are the view's extras (`now`, `catalogue`,
    `existing_event_ids`, `last_event_ts`).
    """
    if stage not in VIEWS:
        raise KeyError(f"no gate for stage {stage!r}; stages: {', '.join(VIEWS)}")
    t = thresholds or default_thresholds()
    frame = VIEWS[stage](data, t, **view_args)
    return validate_frame(stage, frame, t, root, update_docs)


def run_warehouse_gate(
    stage: str,
    thresholds: Thresholds | None = None,
    root: Path | None = None,
    warehouse: Path | None = None,
    update_docs: bool | None = None,
) -> GateResult:
    """Run a warehouse stage's gate on its dbt table (read-only connection)."""
    base = root or data_dir()
    with connect_read_only(warehouse or warehouse_path(base)) as con:
        table, extra = read_warehouse_stage(con, stage)
    return run_gate(stage, table, thresholds, base, update_docs, **extra)
