"""Produce the raw watch logs from the configured source into `<data>/raw/watch_logs/`.

The whole dataset is replaced atomically (written beside, then swapped in), and stamped with a
fingerprint of what produced it, so the warehouse knows when it must rebuild from scratch rather
than grow incrementally.

With a window of days (a partitioned run) only those days' files of the source are rewritten in
place; the other days and the fingerprint stay. Sources are deterministic (the simulator is
seeded, a MovieLens file is fixed), so a day written by a partitioned run is byte-identical to
the same day of a full run: rewriting it is idempotent and the dataset is still the same one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from common.layout import DataLayout
from watchlogs.movielens import load_movielens
from watchlogs.partitioned import DayWindow, write_daily_partitions
from watchlogs.simulator import SimulatorConfig, simulate

FINGERPRINT_FILE = "_dataset.json"
SOURCES = ("simulator", "movielens")
# Files dropped into <data>/landing/watch_logs/ are ingested through the raw GX gate by
# validation.landing.ingest_landing (the raw_watch_logs asset with `source: landing`).
LANDING_SOURCE = "landing"


def title_catalogue_path(root: Path) -> Path:
    """The title catalogue a source knows (item_id, duration): `<data>/raw/titles.parquet`."""
    return DataLayout(Path(root)).raw_titles


def write_title_catalogue(
    table: pa.Table, root: Path, all_item_ids: list[str] | None = None
) -> Path:
    """Write the catalogue: every title of the source (`all_item_ids`, e.g. the simulator's whole
    catalogue, watched or not) plus every title in its logs; `duration` = the longest
    item_duration_seconds logged for the title (null where none was)."""
    durations = pa.TableGroupBy(table.select(["item_id", "item_duration_seconds"]), "item_id")
    logged = durations.aggregate([("item_duration_seconds", "max")])
    known = dict(
        zip(
            logged["item_id"].to_pylist(),
            logged["item_duration_seconds_max"].to_pylist(),
            strict=True,
        )
    )
    ids = sorted((set(all_item_ids or []) | set(known)) - {None})
    catalogue = pa.table(
        {
            "item_id": pa.array(ids, pa.string()),
            "duration": pa.array([known.get(i) for i in ids], pa.float64()),
        }
    )
    path = title_catalogue_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(catalogue, tmp)
    tmp.replace(path)
    return path


def read_title_catalogue(root: Path) -> set[str] | None:
    """The catalogue's item ids, or None when no source wrote one."""
    path = title_catalogue_path(root)
    return (
        set(pq.read_table(path, columns=["item_id"])["item_id"].to_pylist())
        if path.exists()
        else None
    )


def dataset_fingerprint(source: str, params: dict[str, Any]) -> str:
    blob = json.dumps({"source": source, **params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def read_fingerprint(root: Path) -> dict[str, Any] | None:
    path = DataLayout(Path(root)).raw_watch_logs / FINGERPRINT_FILE
    return json.loads(path.read_text()) if path.exists() else None


def dataset_name(root: Path) -> str:
    """The name reports group results by: the source ("simulator", "landing"), or the MovieLens
    file's stem (e.g. "ml-100k"); "?" before any raw data was written."""
    raw = read_fingerprint(root) or {}
    return Path(raw["path"]).stem if raw.get("source") == "movielens" else raw.get("source", "?")


def produce_raw_watch_logs(
    source: str,
    data_root: Path,
    simulator_config: SimulatorConfig | None = None,
    movielens_path: Path | None = None,
    progress: Callable[[str], None] | None = None,
    window: DayWindow | None = None,
) -> dict[str, Any]:
    """Write the source's events as daily Parquet partitions; returns headline figures (of the
    window's events when a window is given: only its days are written, see the module doc)."""
    say = progress or (lambda _msg: None)
    if source == "simulator":
        config = simulator_config or SimulatorConfig()
        result = simulate(config, progress=say)
        table, params = result.events, asdict(config)
    elif source == "movielens":
        if movielens_path is None or not Path(movielens_path).exists():
            raise FileNotFoundError(
                f"MovieLens source file not found: {movielens_path!s}. "
                "Fetch ML-100K with `make ml100k` or point movielens_path at a local file."
            )
        table, params, result = (
            load_movielens(Path(movielens_path)),
            {"path": str(movielens_path)},
            None,
        )
    else:
        raise ValueError(f"unknown watch-log source {source!r}; expected one of {SOURCES}")

    final = DataLayout(Path(data_root)).raw_watch_logs
    fingerprint = {"source": source, "fingerprint": dataset_fingerprint(source, params), **params}
    if window is None:
        staging = final.with_name(final.name + ".incoming")
        shutil.rmtree(staging, ignore_errors=True)
        files = write_daily_partitions(table, staging, file_stem=source)
        _write_fingerprint(staging, fingerprint)
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
    else:
        _check_same_dataset(data_root, fingerprint, window)
        files = write_daily_partitions(table, final, file_stem=source, window=window)
        _write_fingerprint(final, fingerprint)
    written = table if window is None else _rows_in(table, window)

    # The oracle sits apart from the logs; a source without ground truth leaves none behind.
    shutil.rmtree(DataLayout(Path(data_root)).oracle, ignore_errors=True)
    if result is not None:
        result.oracle.save(DataLayout(Path(data_root)).oracle)
    # Side output: the titles this source knows, so later deliveries can be checked against it.
    all_titles = [str(i) for i in result.oracle.item_ids] if result is not None else None
    write_title_catalogue(table, data_root, all_titles)
    days = f" of {window}" if window else ""
    say(f"wrote {written.num_rows:,} events in {len(files)} daily partitions{days} to {final}")

    ts = written.column("event_ts")
    return {
        "source": source,
        "fingerprint": fingerprint["fingerprint"],
        "events": written.num_rows,
        "users": pc.count_distinct(written.column("user_id")).as_py(),
        "titles": pc.count_distinct(written.column("item_id")).as_py(),
        "partitions": len(files),
        "first_event": str(pc.min(ts).as_py()),
        "last_event": str(pc.max(ts).as_py()),
        "has_oracle": result is not None,
    }


def _write_fingerprint(folder: Path, fingerprint: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FINGERPRINT_FILE).write_text(json.dumps(fingerprint, indent=2, default=str))


def _check_same_dataset(root: Path, fingerprint: dict[str, Any], window: DayWindow) -> None:
    """A partitioned run adds days to the dataset on disk; it must be the same dataset, else the
    days outside the window would come from another one (an unpartitioned run replaces it)."""
    current = read_fingerprint(root)
    if current is not None and current.get("fingerprint") != fingerprint["fingerprint"]:
        differing = sorted(
            k for k in set(current) | set(fingerprint) if current.get(k) != fingerprint.get(k)
        )
        raise ValueError(
            f"partitioned run ({window}) of a different dataset than the one in "
            f"{DataLayout(Path(root)).raw_watch_logs}: "
            f"{', '.join(k for k in differing if k != 'fingerprint')} differ "
            f"(on disk: {current.get('source')} {current.get('fingerprint')}, requested: "
            f"{fingerprint['source']} {fingerprint['fingerprint']}). Run unpartitioned to "
            "replace the dataset, or use the same source and parameters."
        )


def _rows_in(table: pa.Table, window: DayWindow) -> pa.Table:
    days = pc.cast(table.column("event_ts"), pa.date32())
    first, last = pa.scalar(window.first, pa.date32()), pa.scalar(window.last, pa.date32())
    return table.filter(pc.and_(pc.greater_equal(days, first), pc.less_equal(days, last)))
