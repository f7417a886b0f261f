"""Ingest watch-log deliveries dropped into `<data>/landing/watch_logs/` through the raw GX gate.

One Parquet file = one delivery (any day or days). Each is validated with the raw suite before
it becomes raw partitions:
- unreadable, missing a contract column, a column of the wrong type, or empty: **rejected whole**,
  moved to `<data>/quarantine/files/` with `<name>.reason.json` beside it;
- row-level failures (null keys, watch time out of range, unknown titles, duplicate event ids,
  also against events already in raw, future timestamps...): the offending rows go to
  `<data>/quarantine/rows/<stem>.parquet` (the delivered record + `quarantine_reason` + the
  failing expectation(s) + the delivery's file name) and the **whole delivery is held back**
  (moved to `<data>/quarantine/held/` with a reason JSON): nothing of it reaches raw;
- otherwise its rows become raw partitions `date=*/landing-<stem>.parquet` and the file moves to
  `<data>/landing/ingested/`.
A fixed delivery of the same name replaces what an earlier version wrote (same file stem in
raw), so the result equals a run where the bad file never arrived.

Titles are checked against the catalogue the producing source wrote (`<data>/raw/titles.parquet`);
without one the unknown-title rule cannot be evaluated and passes (noted in the result).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from common.paths import data_dir, raw_watch_logs_dir
from validation.gate import GateResult, run_gate
from validation.paths import ingested_dir, landing_dir, landing_result_path, quarantine_dir
from validation.thresholds import Thresholds
from watchlogs.partitioned import write_daily_partitions
from watchlogs.schema import conform
from watchlogs.sources import (
    FINGERPRINT_FILE,
    LANDING_SOURCE,
    dataset_fingerprint,
    read_title_catalogue,
)

INGESTED, REJECTED, HELD = "ingested", "rejected", "held"
UNREADABLE = "readable_parquet_file"  # the "expectation" a file that cannot be read breaks


def raw_file_stem(delivery: str) -> str:
    """The raw partition file name a delivery writes (`date=*/<stem>.parquet`)."""
    return f"landing-{Path(delivery).stem}"


@dataclass
class DeliveryOutcome:
    name: str
    status: str  # ingested | rejected | held
    rows: int
    reason: str = ""
    failed_expectations: list[str] = field(default_factory=list)
    bad_rows: int = 0
    bad_row_sample: str = ""  # Markdown table
    quarantined_to: str = ""
    data_docs_page: str = ""  # the delivery's validation page (refused deliveries)
    gate: GateResult | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.gate is not None and self.gate.docs_page is not None:
            self.data_docs_page = str(self.gate.docs_page)

    def describe(self) -> str:
        if self.status == INGESTED:
            return f"{self.name}: ingested {self.rows} rows"
        what = "rejected whole" if self.status == REJECTED else "held back"
        lines = [f"{self.name}: {what} ({self.reason}); quarantined to {self.quarantined_to}"]
        lines += [f"    - {f}" for f in self.failed_expectations]
        if self.bad_rows:
            lines.append(f"    {self.bad_rows} offending row(s)")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "gate"}


@dataclass
class IngestResult:
    deliveries: list[DeliveryOutcome]
    raw_events_added: int
    catalogue_known: bool
    ingested_at: str

    @property
    def success(self) -> bool:
        return all(d.status == INGESTED for d in self.deliveries)

    @property
    def failed(self) -> list[DeliveryOutcome]:
        return [d for d in self.deliveries if d.status != INGESTED]

    def summary(self) -> str:
        if not self.deliveries:
            return "no deliveries in the landing folder"
        head = (
            f"{len(self.deliveries)} deliveries: "
            f"{sum(d.status == INGESTED for d in self.deliveries)} ingested, "
            f"{sum(d.status == REJECTED for d in self.deliveries)} rejected, "
            f"{sum(d.status == HELD for d in self.deliveries)} held back"
        )
        note = "" if self.catalogue_known else " (no title catalogue: unknown titles not checked)"
        return "\n".join([head + note, *[d.describe() for d in self.deliveries]])

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "raw_events_added": self.raw_events_added,
            "catalogue_known": self.catalogue_known,
            "ingested_at": self.ingested_at,
            "deliveries": [d.as_dict() for d in self.deliveries],
        }

    def save(self, path: Path, **extra: Any) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**self.as_dict(), **extra}, indent=2, default=str) + "\n")
        return path


def _existing_event_ids(root: Path, except_stem: str) -> set[str]:
    """Event ids already in raw, except those an earlier version of this delivery wrote."""
    files = [
        f
        for f in sorted(raw_watch_logs_dir(root).glob("date=*/*.parquet"))
        if f.stem != except_stem
    ]
    ids: set[str] = set()
    for f in files:
        ids.update(v for v in pq.read_table(f, columns=["event_id"])["event_id"].to_pylist() if v)
    return ids


def _move_with_reason(src: Path, folder: Path, reason: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / src.name
    shutil.move(str(src), target)
    (folder / f"{src.name}.reason.json").write_text(json.dumps(reason, indent=2, default=str))
    return target


def _quarantine_rows(table: pa.Table, gate: GateResult, delivery: str, root: Path) -> Path:
    """The delivered records that broke a row rule, with why and which expectation."""
    bad = gate.bad_rows()
    positions = pa.array(bad["row"].to_numpy(), pa.int64())
    rows = table.take(positions)
    rows = rows.append_column("quarantine_reason", pa.array(bad["quarantine_reason"], pa.string()))
    rows = rows.append_column(
        "failed_expectation", pa.array(bad["failed_expectations"], pa.string())
    )
    rows = rows.append_column("delivery_file", pa.array([delivery] * len(rows), pa.string()))
    rows = rows.append_column("delivery_row", positions)
    stamp = pa.array([datetime.now(UTC)] * len(rows), pa.timestamp("us", tz="UTC"))
    rows = rows.append_column("quarantined_at", stamp)
    folder = quarantine_dir(root) / "rows"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{Path(delivery).stem}.parquet"
    pq.write_table(rows, path)
    return path


def _ensure_fingerprint(root: Path) -> None:
    """Deliveries grow the current dataset (its fingerprint stays: dbt builds incrementally);
    into an empty raw folder they start a `landing` dataset."""
    raw = raw_watch_logs_dir(root)
    marker = raw / FINGERPRINT_FILE
    if not marker.exists():
        raw.mkdir(parents=True, exist_ok=True)
        fingerprint = {"source": LANDING_SOURCE, "fingerprint": dataset_fingerprint("landing", {})}
        marker.write_text(json.dumps(fingerprint, indent=2))


def ingest_delivery(
    path: Path,
    root: Path,
    thresholds: Thresholds | None = None,
    now: datetime | None = None,
    catalogue: set[str] | None = None,
) -> DeliveryOutcome:
    """Validate one delivered file and ingest, reject or hold it back (see the module doc)."""
    name = path.name
    when = datetime.now(UTC).isoformat()
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - any read error means the file is unusable
        reason = f"unreadable Parquet file: {type(exc).__name__}: {exc}"
        target = _move_with_reason(
            path,
            quarantine_dir(root) / "files",
            {
                "delivery": name,
                "status": REJECTED,
                "reason": reason,
                "quarantined_at": when,
                "failed_expectations": [UNREADABLE],
            },
        )
        return DeliveryOutcome(
            name, REJECTED, 0, reason, [f"{UNREADABLE}: {reason}"], quarantined_to=str(target)
        )

    stem = raw_file_stem(name)
    gate = run_gate(
        "raw_watch_logs",
        table,
        thresholds,
        root,
        now=now,
        catalogue=catalogue,
        existing_event_ids=_existing_event_ids(root, stem),
    )
    failures = [f.describe() for f in gate.failed]
    if gate.file_level_failures:
        reason = ", ".join(dict.fromkeys(f.reason for f in gate.file_level_failures))
        target = _move_with_reason(
            path,
            quarantine_dir(root) / "files",
            {
                "delivery": name,
                "status": REJECTED,
                "reason": reason,
                "rows": table.num_rows,
                "failed_expectations": failures,
                "quarantined_at": when,
                "data_docs": str(gate.docs_index),
            },
        )
        return DeliveryOutcome(
            name, REJECTED, table.num_rows, reason, failures,
            quarantined_to=str(target), gate=gate,
        )  # fmt: skip
    if not gate.success:
        reasons = dict.fromkeys(f.reason for f in gate.failed)
        rows_path = _quarantine_rows(table, gate, name, root)
        bad = len(gate.row_reasons())
        held = _move_with_reason(
            path,
            quarantine_dir(root) / "held",
            {
                "delivery": name,
                "status": HELD,
                "reason": ", ".join(reasons),
                "rows": table.num_rows,
                "offending_rows": bad,
                "rows_quarantined_to": str(rows_path),
                "failed_expectations": failures,
                "quarantined_at": when,
                "data_docs": str(gate.docs_index),
            },
        )
        return DeliveryOutcome(
            name, HELD, table.num_rows, ", ".join(reasons), failures, bad,
            gate.bad_rows_markdown(), quarantined_to=f"{rows_path} (file: {held})", gate=gate,
        )  # fmt: skip

    _ensure_fingerprint(root)
    write_daily_partitions(conform(table), raw_watch_logs_dir(root), file_stem=stem)
    archive = ingested_dir(root)
    archive.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), archive / name)
    return DeliveryOutcome(name, INGESTED, table.num_rows, gate=gate)


def ingest_landing(
    root: Path | None = None,
    thresholds: Thresholds | None = None,
    now: datetime | None = None,
    accept: Callable[[Path], bool] | None = None,
) -> IngestResult:
    """Ingest every delivery waiting in `<data>/landing/watch_logs/`, oldest name first; with
    `accept`, only those it accepts (the others stay in the landing folder, untouched).

    Writes the outcome to `<data>/landing/last_ingest.json` and returns it; never raises for bad
    input (the caller decides: the raw_watch_logs asset check fails when anything was refused).
    """
    base = root or data_dir()
    catalogue = read_title_catalogue(base)
    outcomes = [
        ingest_delivery(path, base, thresholds, now, catalogue)
        for path in sorted(landing_dir(base).glob("*.parquet"))
        if accept is None or accept(path)
    ]
    result = IngestResult(
        deliveries=outcomes,
        raw_events_added=sum(d.rows for d in outcomes if d.status == INGESTED),
        catalogue_known=catalogue is not None,
        ingested_at=datetime.now(UTC).isoformat(),
    )
    result.save(landing_result_path(base))
    return result
