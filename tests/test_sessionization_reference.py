"""The pandas sessionization baseline (benchmarks/pandas_sessionize.py) against hand-computed
sessions and against the dbt model intermediate.int_events_sessionized run for real on DuckDB.

Boundary cases: an idle gap of exactly 30:00 stays in the session, 30:01 and 30:00.000001 split;
the gap runs from the end of the previous playback, or its start when watch_seconds is null; equal
timestamps order by event_id; a session crosses midnight; two users, rows given shuffled.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # benchmarks/ is not an installed package

from benchmarks.pandas_sessionize import OUTPUT_COLUMNS, sessionize  # noqa: E402
from benchmarks.synthetic_events import STAGING_DDL  # noqa: E402

try:  # tests/ on sys.path (pytest's default rootdir-less import mode)
    from dbt_helpers import DBT_EXECUTABLE, query, run_dbt
except ModuleNotFoundError:  # tests/ imported as a package
    from tests.dbt_helpers import DBT_EXECUTABLE, query, run_dbt

UTC = dt.UTC
SESSION_COLUMNS = [
    "event_id",
    "user_id",
    "user_event_index",
    "gap_seconds",
    "is_session_start",
    "session_index",
    "session_id",
    "position_in_session",
]

# event_id, user_id, event_ts (UTC), watch_seconds
EVENTS = [
    ("a1", "u1", dt.datetime(2024, 1, 1, 10, 0, 0, tzinfo=UTC), 600.0),
    ("a2", "u1", dt.datetime(2024, 1, 1, 10, 40, 0, tzinfo=UTC), None),  # 10:10 end + 30:00
    ("a3", "u1", dt.datetime(2024, 1, 1, 11, 10, 1, tzinfo=UTC), 120.0),  # a2 start + 30:01
    ("a5", "u1", dt.datetime(2024, 1, 1, 11, 12, 1, tzinfo=UTC), 60.0),  # tie with a4
    ("a4", "u1", dt.datetime(2024, 1, 1, 11, 12, 1, tzinfo=UTC), 30.5),  # a3 end, gap 0
    ("a6", "u1", dt.datetime(2024, 1, 1, 11, 43, 1, 1, tzinfo=UTC), 10.0),  # a5 end + 30:00.000001
    ("b2", "u2", dt.datetime(2024, 1, 2, 0, 20, 0, tzinfo=UTC), None),  # b1 end + 25:00
    ("b1", "u2", dt.datetime(2024, 1, 1, 23, 50, 0, tzinfo=UTC), 300.0),
    ("b3", "u2", dt.datetime(2024, 1, 2, 0, 50, 1, tzinfo=UTC), 42.0),  # b2 start + 30:01
]

# Hand-computed: event_id, user_event_index, gap_seconds, is_session_start, session_index,
# position_in_session.
EXPECTED = [
    ("a1", 0, None, True, 0, 0),
    ("a2", 1, 1800.0, False, 0, 1),
    ("a3", 2, 1801.0, True, 1, 0),
    ("a4", 3, 0.0, False, 1, 1),
    ("a5", 4, -30.5, False, 1, 2),  # starts while a4's 30.5 s were still playing
    ("a6", 5, 1800.000001, True, 2, 0),
    ("b1", 0, None, True, 0, 0),
    ("b2", 1, 1500.0, False, 0, 1),
    ("b3", 2, 1801.0, True, 1, 0),
]


def events_frame() -> pd.DataFrame:
    rows = [
        {
            "event_id": event_id,
            "user_id": user_id,
            "item_id": f"i{k}",
            "event_ts": ts,
            "event_date": ts.date(),
            "watch_seconds": watch,
            "item_duration_seconds": 3600.0,
            "rating": None,
            "autoplay": k % 2 == 0,
            "source_file": "hand-made",
        }
        for k, (event_id, user_id, ts, watch) in enumerate(EVENTS)
    ]
    df = pd.DataFrame(rows)
    df["event_ts"] = pd.to_datetime(df["event_ts"], utc=True).dt.as_unit("us")
    df["watch_seconds"] = df["watch_seconds"].astype("float64")
    df["rating"] = df["rating"].astype("Int8")
    return df


def expected_frame() -> pd.DataFrame:
    df = pd.DataFrame(
        EXPECTED,
        columns=[
            "event_id",
            "user_event_index",
            "gap_seconds",
            "is_session_start",
            "session_index",
            "position_in_session",
        ],
    )
    df["user_id"] = "u" + df["event_id"].str[0].map({"a": "1", "b": "2"})
    df["session_id"] = df["user_id"] + "-" + df["session_index"].astype(str)
    return df[SESSION_COLUMNS]


def normalized(df: pd.DataFrame) -> pd.DataFrame:
    """Session columns in event_id order with plain dtypes, so frames from any source compare."""
    out = df[SESSION_COLUMNS].sort_values("event_id", ignore_index=True)
    return out.astype(
        {
            "event_id": object,
            "user_id": object,
            "session_id": object,
            "user_event_index": "int64",
            "gap_seconds": "float64",
            "is_session_start": bool,
            "session_index": "int64",
            "position_in_session": "int64",
        }
    )


@pytest.mark.parametrize("arrow_strings", [False, True], ids=["object-str", "arrow-str"])
def test_pandas_sessionize_matches_hand_computed(arrow_strings: bool) -> None:
    with pd.option_context("future.infer_string", arrow_strings):
        got = sessionize(events_frame(), gap_minutes=30)
        assert list(got.columns) == OUTPUT_COLUMNS
        # The output is in (user_id, event_ts, event_id) order.
        assert got["event_id"].tolist() == ["a1", "a2", "a3", "a4", "a5", "a6", "b1", "b2", "b3"]
        pd.testing.assert_frame_equal(
            normalized(got), normalized(expected_frame()), check_exact=True
        )


def test_pandas_sessionize_gap_var() -> None:
    got = normalized(sessionize(events_frame(), gap_minutes=25)).set_index("event_id")
    # 25:00 exactly (b1 end -> b2) still stays; the 30:00 gap a1 -> a2 now splits.
    assert not got.loc["b2", "is_session_start"]
    assert got.loc["a2", "is_session_start"]
    assert got["session_index"].to_dict() == {
        "a1": 0, "a2": 1, "a3": 2, "a4": 2, "a5": 2, "a6": 3, "b1": 0, "b2": 0, "b3": 1
    }  # fmt: skip


@pytest.mark.skipif(not DBT_EXECUTABLE.exists(), reason="dbt is not installed in this environment")
def test_dbt_model_matches_pandas_and_hand_computed(tmp_path: Path) -> None:
    # Only int_events_sessionized runs, on a staging table written here: the raw source (and its
    # Parquet glob) is parsed but never read, so no raw files are needed.
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    events = events_frame()
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(STAGING_DDL)
        con.register("events_df", events)
        con.execute("insert into staging.stg_watch_events by name select * from events_df")
        stored = con.sql(
            "select typeof(event_ts), typeof(event_date), typeof(rating) "
            "from staging.stg_watch_events limit 1"
        ).fetchall()
        assert stored == [("TIMESTAMP WITH TIME ZONE", "DATE", "TINYINT")]

    run_dbt(["run", "--select", "int_events_sessionized"], data_dir, tmp_path / "dbt_work")
    dbt_out = query(data_dir, "select * from intermediate.int_events_sessionized")

    assert sorted(dbt_out.columns) == sorted(OUTPUT_COLUMNS)
    pd.testing.assert_frame_equal(
        normalized(dbt_out), normalized(expected_frame()), check_exact=True
    )
    pd.testing.assert_frame_equal(
        normalized(dbt_out), normalized(sessionize(events)), check_exact=True
    )
