"""Helpers for the dbt tests: write raw watch-log partitions, run the dbt CLI, query the warehouse.

Also a numpy generator of a synthetic contract-conforming watch log, to time `dbt build` at scale:

    # writes /tmp/asft_1m/raw/watch_logs, then times dbt build on it
    .venv/bin/python tests/dbt_helpers.py /tmp/asft_1m --events 1000000
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from watchlogs.schema import RAW_WATCH_LOG_SCHEMA, conform  # noqa: E402

TRANSFORMS_DIR = REPO_ROOT / "transforms"
DBT_EXECUTABLE = Path(sys.executable).parent / "dbt"
UTC = dt.UTC


def raw_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "raw" / "watch_logs"


def write_partition(
    data_dir: Path,
    day: str,
    rows: Sequence[dict] | pa.Table,
    name: str = "part-0",
    conform_rows: bool = True,
) -> Path:
    """Write rows (dicts of contract columns, extras allowed) as raw/.../date=DAY/NAME.parquet."""
    if isinstance(rows, pa.Table):
        table = rows
    else:
        columns = list(RAW_WATCH_LOG_SCHEMA.names) + sorted(
            {k for r in rows for k in r} - set(RAW_WATCH_LOG_SCHEMA.names)
        )
        table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])
        if conform_rows:
            table = conform(_cast_nulls(table))
    path = raw_dir(data_dir) / f"date={day}" / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def _cast_nulls(table: pa.Table) -> pa.Table:
    """Give all-null columns (type null) the contract type so conform() can cast them."""
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type) and field.name in RAW_WATCH_LOG_SCHEMA.names:
            target = RAW_WATCH_LOG_SCHEMA.field(field.name).type
            table = table.set_column(i, field.name, pa.nulls(len(table), target))
    return table


def run_dbt(
    args: Sequence[str], data_dir: Path, work_dir: Path, check: bool = True
) -> subprocess.CompletedProcess:
    """Run the real dbt CLI on transforms/ against data_dir; target/ and logs/ go to work_dir."""
    env = dict(os.environ, ASFT_DATA_DIR=str(data_dir), DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    cmd = [
        str(DBT_EXECUTABLE),
        *args,
        "--project-dir",
        str(TRANSFORMS_DIR),
        "--profiles-dir",
        str(TRANSFORMS_DIR),
        "--target-path",
        str(Path(work_dir) / "target"),
        "--log-path",
        str(Path(work_dir) / "logs"),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(TRANSFORMS_DIR))
    if check and proc.returncode != 0:
        raise AssertionError(
            f"dbt {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
        )
    return proc


def connect(data_dir: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(Path(data_dir) / "warehouse.duckdb"), read_only=True)
    con.execute("set TimeZone = 'UTC'")
    return con


def query(data_dir: Path, sql: str, params: Sequence | None = None):
    """Run SQL on the warehouse (read-only) and return a pandas DataFrame."""
    with connect(data_dir) as con:
        return con.execute(sql, params or []).df()


def synthetic_watch_logs(
    n_events: int = 1_000_000,
    n_users: int = 6_000,
    n_items: int = 3_500,
    n_days: int = 120,
    start: dt.date = dt.date(2024, 1, 1),
    dirty_fraction: float = 0.0,
    seed: int = 0,
) -> pa.Table:
    """A contract-conforming synthetic watch log: sessions of Zipf-popular items, sparse ratings.

    Only for scale tests of the transforms (the simulator is watchlogs/). With dirty_fraction > 0
    that share of rows gets a contract violation (negative watch, rating 7 or a duplicate event_id).
    """
    rng = np.random.default_rng(seed)
    mean_session = 6.0
    n_sessions = int(np.ceil(n_events / mean_session)) + 1
    sizes = rng.geometric(1.0 / mean_session, n_sessions)
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n_events) + 1]
    sizes[-1] -= sizes.sum() - n_events
    sizes = sizes[sizes > 0]
    user_activity = rng.lognormal(0.0, 1.0, n_users)
    session_user = rng.choice(n_users, size=len(sizes), p=user_activity / user_activity.sum())
    session_start_us = rng.integers(0, n_days * 86_400 * 1_000_000, len(sizes))
    user = np.repeat(session_user, sizes)
    item_pop = 1.0 / np.arange(1, n_items + 1) ** 0.9
    item = rng.choice(n_items, size=n_events, p=item_pop / item_pop.sum())
    duration = np.round(rng.lognormal(np.log(45 * 60), 0.5, n_items))[item]
    autoplay = rng.random(n_events) < 0.3
    frac = np.clip(rng.beta(2.0, 1.5, n_events) * np.where(autoplay, 1.2, 1.0), 0.0, 1.4)
    watch = np.round(duration * frac, 1)
    gaps_us = (watch + rng.exponential(120.0, n_events)) * 1_000_000
    session_id = np.repeat(np.arange(len(sizes)), sizes)
    first = np.r_[0, np.cumsum(sizes)[:-1]]
    cum_gaps = np.cumsum(gaps_us)
    offsets = cum_gaps - np.repeat(cum_gaps[first], sizes)  # 0 for each session's first event
    ts_us = session_start_us[session_id] + offsets.astype(np.int64)
    ts_us = np.minimum(ts_us, n_days * 86_400 * 1_000_000 - 1)
    epoch0 = (
        int(dt.datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) * 1_000_000
    )
    rated = rng.random(n_events) < 0.05
    rating = np.where(
        rated, np.clip(np.round(1 + 4 * frac + rng.normal(0, 0.7, n_events)), 1, 5), 0
    )
    event_ids = np.char.add("e", np.arange(n_events).astype(str))
    if dirty_fraction > 0:
        dirty = np.flatnonzero(rng.random(n_events) < dirty_fraction)
        kind = rng.integers(0, 3, len(dirty))
        watch[dirty[kind == 0]] = -5.0
        rating[dirty[kind == 1]] = 7
        rated[dirty[kind == 1]] = True
        dup = dirty[kind == 2]
        event_ids[dup] = event_ids[np.maximum(dup - 1, 0)]
    table = pa.table(
        {
            "event_id": pa.array(event_ids, pa.string()),
            "user_id": pa.array(np.char.add("u", user.astype(str)), pa.string()),
            "item_id": pa.array(np.char.add("i", item.astype(str)), pa.string()),
            "event_ts": pa.array(epoch0 + ts_us, pa.timestamp("us", tz="UTC")),
            "watch_seconds": pa.array(watch, pa.float64()),
            "item_duration_seconds": pa.array(duration, pa.float64()),
            "rating": pa.array(rating.astype(np.int8), pa.int8(), mask=~rated),
            "autoplay": pa.array(autoplay, pa.bool_()),
        }
    )
    return conform(table)


def write_daily_partitions(table: pa.Table, data_dir: Path) -> int:
    """Split a watch log by UTC date of event_ts into raw/watch_logs/date=DAY/part-0.parquet."""
    ts = table.column("event_ts").cast(pa.int64()).to_numpy()
    day = ts // (86_400 * 1_000_000)
    order = np.argsort(ts, kind="stable")
    table, day = table.take(pa.array(order)), day[order]
    bounds = np.flatnonzero(np.diff(day)) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, len(day)]
    for s, e in zip(starts, ends, strict=True):
        name = (dt.date(1970, 1, 1) + dt.timedelta(days=int(day[s]))).isoformat()
        write_partition(data_dir, name, table.slice(s, e - s))
    return len(starts)


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        description="Write a synthetic watch log and time `dbt build` on it."
    )
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--dirty-fraction", type=float, default=0.001)
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args(argv)
    data_dir = args.data_dir.resolve()
    if not raw_dir(data_dir).exists():
        t0 = time.perf_counter()
        n_files = write_daily_partitions(
            synthetic_watch_logs(args.events, dirty_fraction=args.dirty_fraction), data_dir
        )
        print(
            f"wrote {args.events} events in {n_files} partitions in {time.perf_counter() - t0:.1f}s"
        )
    if not args.no_build:
        t0 = time.perf_counter()
        proc = run_dbt(["build"], data_dir, data_dir / "dbt_work", check=False)
        print(proc.stdout[-1500:])
        print(f"dbt build: {time.perf_counter() - t0:.1f}s (exit {proc.returncode})")


if __name__ == "__main__":
    main()
