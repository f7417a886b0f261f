"""Raw watch logs on disk: one zstd Parquet file per UTC day and producer,
`<root>/date=YYYY-MM-DD/<file_stem>.parquet`, rows sorted by event_ts.

Rows without an event_ts cannot be given a day; they go to `date=unknown/` rather than being
dropped, so the raw-contract gate can quarantine them with a reason.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from watchlogs.schema import RAW_WATCH_LOG_SCHEMA, conform

UNKNOWN_DATE = "unknown"
_US_PER_DAY = 86_400 * 1_000_000


class DayWindow(NamedTuple):
    """A range of UTC days, both ends inclusive (a run's partitions)."""

    first: dt.date
    last: dt.date

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.first <= day <= self.last

    def __str__(self) -> str:
        return f"{self.first}..{self.last}"


def write_daily_partitions(
    table: pa.Table, root: Path, file_stem: str, window: DayWindow | None = None
) -> list[Path]:
    """Write `table` as daily partitions; returns the files written, oldest day first.

    Files of the same stem left from an earlier write are replaced or removed, so rewriting
    the same source is idempotent; other stems (other producers) are untouched. With a
    `window`, only the window's days are written (rows of other days and rows without an
    event_ts are left out) and only the window's files of this stem are replaced or removed.
    """
    if not file_stem or "/" in file_stem or file_stem.startswith("."):
        raise ValueError(f"invalid file_stem {file_stem!r}")
    root = Path(root)
    table = conform(table)
    table = _sorted_by_ts(table)
    n_dated = table.num_rows - table["event_ts"].null_count
    micros = table["event_ts"].slice(0, n_dated).cast(pa.int64()).to_numpy()
    days = np.floor_divide(micros, _US_PER_DAY)
    cuts = np.flatnonzero(np.diff(days)) + 1
    starts = np.r_[0, cuts] if n_dated else np.zeros(0, dtype=np.int64)
    ends = np.r_[cuts, n_dated] if n_dated else np.zeros(0, dtype=np.int64)

    parts: list[tuple[str, pa.Table]] = [
        (str(np.datetime64(int(days[lo]), "D")), table.slice(lo, hi - lo))
        for lo, hi in zip(starts, ends, strict=True)
    ]
    if n_dated < table.num_rows:
        parts.append((UNKNOWN_DATE, table.slice(n_dated)))
    existing = set(root.glob(f"date=*/{file_stem}.parquet"))
    if window is not None:
        parts = [(d, part) for d, part in parts if _day(d) in window]
        existing = {f for f in existing if _day(f.parent.name.removeprefix("date=")) in window}

    targets = [root / f"date={date}" / f"{file_stem}.parquet" for date, _ in parts]
    for stale in existing - set(targets):
        stale.unlink()
    for target, (_, part) in zip(targets, parts, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        pq.write_table(part, tmp, compression="zstd")
        os.replace(tmp, target)  # readers never see a half-written file
    return targets


def _day(name: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(name)
    except ValueError:  # `unknown`: no day
        return None


def days_spanned(path: Path) -> DayWindow | None:
    """The UTC days of a Parquet file's event_ts (None when it has no dated row).
    Raises if the file cannot be read or has no event_ts column."""
    ts_type = RAW_WATCH_LOG_SCHEMA.field("event_ts").type
    ts = pq.read_table(path, columns=["event_ts"])["event_ts"].cast(ts_type)
    lo, hi = pc.min(ts).as_py(), pc.max(ts).as_py()
    return None if lo is None else DayWindow(lo.date(), hi.date())


def read_watch_logs(root: Path) -> pa.Table:
    """All partitions under `root` as one contract table sorted by event_ts (stable)."""
    files = sorted(Path(root).glob("date=*/*.parquet"))
    if not files:
        return conform(RAW_WATCH_LOG_SCHEMA.empty_table())
    # Files are read one by one so the `date=` directory is not turned into a column.
    table = pa.concat_tables(
        [pq.read_table(f) for f in files], promote_options="permissive"
    ).combine_chunks()
    return _sorted_by_ts(conform(table))


def _sorted_by_ts(table: pa.Table) -> pa.Table:
    """Stable sort by event_ts, rows without one last (numpy: same on every pyarrow version)."""
    micros = table["event_ts"].cast(pa.int64())
    keys = pc.fill_null(micros, np.iinfo(np.int64).max).to_numpy()
    return table.take(pa.array(np.argsort(keys, kind="stable")))
