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


# Not in the closing summary (they are in the JSON and Markdown): prose, times, paths, per-split
# sizes, the champion rule's per-check detail.
_NOT_SUMMARISED = {"stage", "written_at", "protocol", "data", "champion_checks", "validated_at",
                   "data_docs_page", "failed"}  # fmt: skip
WIDTH = 100
_LONG = 32  # a text longer than this is a note under the tables, not a cell


def _is_mean_ci(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"mean", "ci95"}


def _is_leaf(value: Any) -> bool:
    return _is_mean_ci(value) or not isinstance(value, dict)


def _kept(payload: dict[str, Any]) -> dict[str, Any]:
    """What a summary shows of a mapping: no skipped keys, paths or ids."""
    return {
        k: v
        for k, v in payload.items()
        if k not in _NOT_SUMMARISED
        and not k.endswith("_id")
        and not (isinstance(v, str) and v.startswith("/"))
        and not (isinstance(v, list) and any(isinstance(x, dict | list) for x in v))
    }


def _cell(value: Any) -> str:
    if _is_mean_ci(value):
        return f"{_cell(value['mean'])} ± {value['ci95']:.2g}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if value is None or value == [] or value == {}:
        return "-"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, str) and len(value) > 19 and value[4] == "-" and value[10] in " T":
        return value[:16].replace("T", " ")  # a timestamp, to the minute
    return _format(value)


def _is_row(value: Any) -> bool:
    return (
        isinstance(value, dict) and bool(_kept(value)) and all(map(_is_leaf, _kept(value).values()))
    )


def _groups(rows: dict[str, dict[str, Any]]) -> list[dict[str, dict[str, Any]]]:
    """Rows with mostly the same columns, together (each row joins the first group sharing at
    least half of its columns)."""
    groups: list[dict[str, dict[str, Any]]] = []
    for name, row in rows.items():
        for group in groups:
            columns = {c for r in group.values() for c in r}
            if 2 * len(columns & set(row)) >= len(row):
                group[name] = row
                break
        else:
            groups.append({name: row})
    return groups


def _collect(prefix: str, node: dict[str, Any], scalars: list, tables: list) -> None:
    """Split a report into scalars (label, value) and tables (title, {row: {column: value}}):
    two or more sibling mappings of figures with mostly the same keys make a table."""
    node = _kept(node)
    rows = {k: _kept(v) for k, v in node.items() if _is_row(v)}
    tabled: set[str] = set()
    for group in _groups(rows):
        if len(group) < 2:
            continue
        tabled |= set(group)
        short = {n: {c: v for c, v in r.items() if not _is_note(v)} for n, r in group.items()}
        tables.append((prefix or "figures", short))
        for name, row in group.items():
            scalars += [
                (f"{prefix}.{name}.{c}".lstrip("."), v) for c, v in row.items() if _is_note(v)
            ]
    for key, value in node.items():
        label = f"{prefix}.{key}" if prefix else key
        if _is_leaf(value):
            scalars.append((label, value))
        elif key not in tabled:
            _collect(label, value, scalars, tables)


def _is_note(value: Any) -> bool:
    return isinstance(value, str) and len(value) > _LONG


def _blocks(header: list[str], rows: list[list[str]], width: int = WIDTH) -> list[str]:
    """An aligned table, its columns wrapped into further blocks (repeating the first column)
    where it would be wider than `width`."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines: list[str] = []
    start = 1
    while start < len(header) or (start == 1 and len(header) == 1):
        end, used = start, widths[0] + 2 * bool(widths[0])
        while end < len(header) and (end == start or used + widths[end] + 2 <= width):
            used += widths[end] + 2
            end += 1
        cols = [0, *range(start, end)]
        for r in [header, *rows]:
            cells = [r[0].ljust(widths[0])] if widths[0] else []
            cells += [r[i].rjust(widths[i]) for i in cols[1:]]
            lines.append("  " + "  ".join(cells).rstrip())
        start = end if end > start else start + 1
        if start >= len(header):
            break
    return lines


def stage_summary(stage: str, payload: dict[str, Any]) -> str:
    """One stage: a strip of its single figures, a table per group of like rows, then notes."""
    scalars: list[tuple[str, Any]] = []
    tables: list[tuple[str, dict[str, dict[str, Any]]]] = []
    _collect("", payload, scalars, tables)
    notes = [(k, v) for k, v in scalars if _is_note(v)]
    cells = [(k, _cell(v)) for k, v in scalars if not _is_note(v)]
    written = str(payload.get("written_at", "?"))[:19].replace("T", " ")
    lines = [f"{stage}  (written {written} UTC)"]
    if cells:
        lines += _blocks([""] + [k for k, _ in cells], [[""] + [v for _, v in cells]])
    for title, rows in tables:
        columns = list(dict.fromkeys(c for row in rows.values() for c in row))
        body = [[name] + [_cell(row.get(c)) for c in columns] for name, row in rows.items()]
        lines += _blocks([title, *columns], body)
    for key, text in notes:
        line = f"  {key}: {text}"
        lines.append(line if len(line) <= WIDTH else line[: WIDTH - 3] + "...")
    return "\n".join(lines)


def summary_text(root: Path | None = None) -> str:
    """The summary the run command ends with: compact aligned tables, one block per stage."""
    reports = read_reports(root)
    if not reports:
        return f"no reports under {reports_dir(root)}"
    return "\n\n".join(stage_summary(stage, payload) for stage, payload in reports.items())


def main() -> None:
    print(f"== run summary ({reports_dir()}) ==")
    print(summary_text())


if __name__ == "__main__":
    main()
