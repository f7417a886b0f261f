"""Stage reports: `<data>/reports/<stage>.json` with a Markdown twin, and the run summary.

Every stage writes its headline figures here; the README's run command, schedules and CI read the
same files (see shared/design.md).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.paths import reports_dir


def write_report(stage: str, figures: dict[str, Any], root: Path | None = None) -> Path:
    """Write `<stage>.json` and `<stage>.md`; returns the JSON path."""
    folder = reports_dir(root)
    payload = {"stage": stage, "written_at": datetime.now(UTC).isoformat(), **figures}
    json_path = folder / f"{stage}.json"
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    (folder / f"{stage}.md").write_text(to_markdown(payload))
    return json_path


def read_reports(root: Path | None = None) -> dict[str, dict[str, Any]]:
    """All stage reports under the data directory, keyed by stage."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(reports_dir(root).glob("*.json"))}


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:,.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _flatten(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict) and set(value) == {"mean", "ci95"}:
        return [(prefix, f"{_format(value['mean'])} ± {_format(value['ci95'])}")]
    if isinstance(value, dict):
        rows: list[tuple[str, str]] = []
        for key, inner in value.items():
            rows.extend(_flatten(f"{prefix}.{key}" if prefix else str(key), inner))
        return rows
    if isinstance(value, list):
        return [(prefix, ", ".join(_format(v) for v in value))]
    return [(prefix, _format(value))]


def to_markdown(payload: dict[str, Any]) -> str:
    """A two-column table of every (nested) figure in a report."""
    lines = [f"# {payload.get('stage', 'report')}", "", "| figure | value |", "| --- | --- |"]
    for key, value in _flatten("", {k: v for k, v in payload.items() if k != "stage"}):
        lines.append(f"| {key} | {value} |")
    return "\n".join(lines) + "\n"


_NOT_SUMMARISED = ("stage", "written_at", "protocol")


def summary_text(root: Path | None = None) -> str:
    """The short summary the run command ends with: one block per stage report."""
    reports = read_reports(root)
    if not reports:
        return f"no reports under {reports_dir(root)}"
    blocks = []
    for stage, payload in reports.items():
        rows = [
            (k, v if len(v) <= 60 else v[:57] + "...")
            for k, v in _flatten("", {k: v for k, v in payload.items() if k not in _NOT_SUMMARISED})
            if ".data." not in k  # split sizes: in the JSON, not the summary
        ]
        width = max(len(k) for k, _ in rows) if rows else 0
        body = "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)
        blocks.append(f"[{stage}] ({payload.get('written_at', '?')})\n{body}")
    return "\n\n".join(blocks)


def main() -> None:
    print(f"== run summary ({reports_dir()}) ==")
    print(summary_text())


if __name__ == "__main__":
    main()
