"""Seeded synthetic watch events with the columns of `staging.stg_watch_events`, and writing them
as a benchmark's inputs (a DuckDB warehouse table and a Parquet file)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EVENTS_PER_USER = 170
N_DAYS = 120
EPOCH0_US = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()) * 1_000_000
DAY_US = 86_400 * 1_000_000
HOUR_S = 3_600.0

# Same columns and types as the dbt model staging.stg_watch_events.
STAGING_DDL = """
create schema if not exists staging;
create table staging.stg_watch_events (
    event_id varchar,
    user_id varchar,
    item_id varchar,
    event_ts timestamptz,
    event_date date,
    watch_seconds double,
    item_duration_seconds double,
    rating tinyint,
    autoplay boolean,
    source_file varchar
);
"""


def synthetic_events(n_events: int, n_users: int, seed: int = 0) -> pa.Table:
    """Seeded watch events with the columns of staging.stg_watch_events, in event_ts order.

    Heavy-tailed events per user (lognormal weights); sessions of ~6 playbacks whose next title
    starts seconds to minutes after the previous playback ends; hours to days between sessions so
    each user's history spreads over the 120 days; ~3% unknown watch_seconds (the playback still
    took time, so those gaps look longer to the model); 0.1% events share their predecessor's
    timestamp (ordered by event_id then).
    """
    rng = np.random.default_rng(seed)
    n_users = max(1, min(n_users, n_events))
    weight = rng.lognormal(0.0, 1.0, n_users)
    weight = np.minimum(weight, 20 * weight.mean())  # the heaviest users still fit in 120 days
    per_user = 1 + rng.multinomial(n_events - n_users, weight / weight.sum())
    user = np.repeat(np.arange(n_users), per_user)
    first = np.r_[0, np.cumsum(per_user)[:-1]]

    n_items = max(1_000, n_events // 300)
    item_weight = 1.0 / np.arange(1, n_items + 1) ** 0.9
    item = rng.choice(n_items, n_events, p=item_weight / item_weight.sum())
    duration = np.round(rng.lognormal(np.log(30 * 60), 0.6, n_items))[item]
    played = np.round(duration * rng.beta(2.0, 1.5, n_events), 1)

    is_start = rng.random(n_events) < 1 / 6
    is_start[first] = True
    intra_gap = rng.lognormal(np.log(60.0), 1.0, n_events)  # median 1 min after playback end
    # Between sessions: at least an hour, plus a random share (exponential spacings) of the user's
    # free time, of which the user fills 60-100% of the 120 days, so no history overruns them.
    inter = is_start.copy()
    inter[first] = False
    busy = np.bincount(user, weights=played + intra_gap, minlength=n_users)
    n_inter = np.bincount(user, weights=inter, minlength=n_users)
    spare = np.maximum(N_DAYS * 86_400 - busy - n_inter * HOUR_S, 0.0)
    spacing = rng.exponential(1.0, n_events) * inter
    spacing_sum = np.maximum(np.bincount(user, weights=spacing, minlength=n_users), 1e-9)
    fill = rng.uniform(0.6, 1.0, n_users) * spare / spacing_sum
    inter_gap = HOUR_S + spacing * fill[user]
    # Step from the previous event of the same user: its playback plus the idle gap.
    step = np.where(is_start, inter_gap, intra_gap) + np.r_[0.0, played[:-1]]
    step[(rng.random(n_events) < 0.001) & ~is_start] = 0.0
    step[first] = 0.0
    elapsed = np.cumsum(step)
    elapsed -= np.repeat(elapsed[first], per_user)
    span = elapsed[np.r_[first[1:], n_events] - 1]
    offset = rng.random(n_users) * np.maximum(N_DAYS * 86_400 - span, 0.0)
    ts_ms = np.round((offset[user] + elapsed) * 1e3).astype(np.int64)  # millisecond log clock
    ts_us = EPOCH0_US + ts_ms * 1_000

    watch = pa.array(played, pa.float64(), mask=rng.random(n_events) < 0.03)
    rated = rng.random(n_events) < 0.05
    rating = pa.array(rng.integers(1, 6, n_events).astype(np.int8), pa.int8(), mask=~rated)
    autoplay = pa.array(rng.random(n_events) < 0.3, pa.bool_(), mask=rng.random(n_events) < 0.01)
    # Event ids unrelated to time or user, so the sort really has to order them.
    event_no = pa.array(rng.permutation(n_events))
    event_ts = pa.array(ts_us, pa.timestamp("us", tz="UTC"))
    event_date = pa.array((ts_us // DAY_US).astype(np.int32), pa.date32())

    table = pa.table(
        {
            "event_id": _prefixed("e", event_no),
            "user_id": _prefixed("u", pa.array(user)),
            "item_id": _prefixed("i", pa.array(item)),
            "event_ts": event_ts,
            "event_date": event_date,
            "watch_seconds": watch,
            "item_duration_seconds": pa.array(duration, pa.float64()),
            "rating": rating,
            "autoplay": autoplay,
            "source_file": pc.binary_join_element_wise(
                "raw/watch_logs/date=",
                pc.cast(event_date, pa.string()),
                "/part-0.parquet",
                "",
            ),
        }
    )
    # Staging order: like daily partitions read in date order.
    return table.take(pa.array(np.argsort(ts_us, kind="stable")))


def _prefixed(prefix: str, codes: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(codes, pa.string()), "")


def write_inputs(table: pa.Table, work: Path) -> None:
    """The staging table in a fresh warehouse and the same rows as Parquet (not timed)."""
    import duckdb
    import pyarrow.parquet as pq

    data_dir = work / "data"
    data_dir.mkdir(parents=True)
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(STAGING_DDL)
        con.register("events_arrow", table)
        con.execute("insert into staging.stg_watch_events select * from events_arrow")
        con.execute("checkpoint")
    finally:
        con.close()
    pq.write_table(table, work / "events.parquet")
