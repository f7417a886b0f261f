"""The data quality report: GX Data Docs plus `<data>/reports/quality.json`.

    python -m validation.docs     # rebuild Data Docs and quality.json; prints the index.html path

Open the printed `index.html` in a browser (file://...): one page per stored validation run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.paths import data_dir
from common.reports import write_report
from validation.context import build_data_docs, get_context, latest_docs_page
from validation.suites import SUITES


def latest_results(root: Path | None = None) -> dict[str, Any]:
    """The newest stored validation result of every suite, keyed by suite name."""
    store = get_context(root).validation_results_store
    newest: dict[str, tuple[Any, Any]] = {}
    for key in store.list_keys():
        suite = key.expectation_suite_identifier.name
        when = key.run_id.run_time
        if suite not in newest or when > newest[suite][0]:
            newest[suite] = (when, key)
    return {suite: store.get(key) for suite, (_, key) in newest.items()}


def quality_figures(root: Path | None = None) -> dict[str, Any]:
    """Per suite: passed or failed, expectation counts, what failed, when; plus totals."""
    suites: dict[str, Any] = {}
    for suite, result in sorted(latest_results(root).items()):
        stats = result.statistics
        suites[suite] = {
            "passed": bool(result.success),
            "expectations": int(stats.get("evaluated_expectations", 0)),
            "failed_expectations": int(stats.get("unsuccessful_expectations", 0)),
            "failed": [
                f"{r.expectation_config.type}({r.expectation_config.kwargs.get('column', '')})"
                for r in result.results
                if not r.success
            ],
            "validated_at": str(result.meta.get("validation_time", "")),
            "data_docs_page": str(latest_docs_page(suite, root) or ""),
        }
    return {
        "suites_defined": len(SUITES),
        "suites_validated": len(suites),
        "suites_passed": sum(s["passed"] for s in suites.values()),
        "suites_failed": sum(not s["passed"] for s in suites.values()),
        "suites": suites,
    }


def rebuild_quality_report(root: Path | None = None) -> tuple[Path, Path, dict[str, Any]]:
    """Rebuild Data Docs and write quality.json; returns (index.html, quality.json, figures)."""
    base = root or data_dir()
    index = build_data_docs(base)
    figures = {**quality_figures(base), "data_docs": str(index)}
    report = write_report("quality", figures, root=base)
    return index, report, figures


def main() -> None:
    index, report, figures = rebuild_quality_report()
    print(
        f"{figures['suites_passed']} suite(s) passed, {figures['suites_failed']} failed; "
        f"report {report}"
    )
    print(index)


if __name__ == "__main__":
    main()
