"""Pandas baseline of the dbt model intermediate.int_events_sessionized: same logic, same columns.

Per user, ordered by (event_ts, event_id): idle gap = event_ts - (previous event_ts + previous
watch_seconds, 0 when unknown); an event starts a session when it is the user's first or its gap is
strictly greater than `gap_minutes`. See transforms/models/intermediate/int_events_sessionized.sql.
"""

from __future__ import annotations

import pandas as pd

# Columns the model reads from staging.stg_watch_events and the ones it writes, in its order.
INPUT_COLUMNS = [
    "event_id",
    "user_id",
    "item_id",
    "event_ts",
    "event_date",
    "watch_seconds",
    "autoplay",
]
OUTPUT_COLUMNS = [
    *INPUT_COLUMNS,
    "user_event_index",
    "gap_seconds",
    "is_session_start",
    "session_index",
    "session_id",
    "position_in_session",
]


def sessionize(df: pd.DataFrame, gap_minutes: float = 30) -> pd.DataFrame:
    """Cut watch events into gap-based sessions per user; returns a new frame sorted by user."""
    out = df[INPUT_COLUMNS].sort_values(["user_id", "event_ts", "event_id"], ignore_index=True)
    by_user = out.groupby("user_id", sort=False)
    prev = by_user[["event_ts", "watch_seconds"]].shift()

    # Whole microseconds like the SQL (epoch_us, round(watch * 1e6)): exact integers in float64,
    # so the 30:00 boundary and gap_seconds match the model bit for bit (numpy rounds halves to
    # even, DuckDB away from zero: only watch times with a sub-microsecond .5 could differ).
    since_prev_start_us = (out["event_ts"] - prev["event_ts"]) / pd.Timedelta(microseconds=1)
    gap_us = since_prev_start_us - (prev["watch_seconds"].fillna(0.0) * 1e6).round()
    starts = gap_us.isna() | (gap_us > gap_minutes * 60e6)
    out["user_event_index"] = by_user.cumcount()
    out["gap_seconds"] = gap_us / 1e6
    out["is_session_start"] = starts
    # Integer user codes from the grouping already built, instead of hashing user_id strings again.
    user_no = by_user.ngroup()
    out["session_index"] = (starts.groupby(user_no, sort=False).cumsum() - 1).astype("int32")
    out["session_id"] = out["user_id"] + "-" + out["session_index"].astype(str)
    # Rows are grouped by user and each user's first row is a start, so the running count of
    # starts over the whole frame numbers the sessions globally: one integer key per session.
    by_session = out.groupby(starts.cumsum(), sort=False)
    out["position_in_session"] = by_session.cumcount().astype("int32")
    return out[OUTPUT_COLUMNS]
