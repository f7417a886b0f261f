"""The dbt project (transforms/) end to end on tiny Parquet: real `dbt build` runs on DuckDB.

One module-scoped warehouse, three dbt invocations in all:
  1. `dbt build` on ten days of good events plus a file of broken rows (quarantined, build green);
  2. a new day's partition arrives (with a late event for an earlier day and a re-delivery) and
     `dbt build` runs again, incrementally;
  3. `dbt run --full-refresh`, which must give the same incremental tables as step 2.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

try:  # tests/ on sys.path (pytest's default rootdir-less import mode)
    from dbt_helpers import DBT_EXECUTABLE, connect, query, run_dbt, write_partition
except ModuleNotFoundError:  # tests/ imported as a package
    from tests.dbt_helpers import DBT_EXECUTABLE, connect, query, run_dbt, write_partition

pytestmark = pytest.mark.skipif(
    not DBT_EXECUTABLE.exists(), reason="dbt is not installed in this environment"
)

UTC = dt.UTC
DAYS = [dt.date(2024, 3, 1) + dt.timedelta(days=i) for i in range(10)]
NEW_DAY = dt.date(2024, 3, 11)
INCREMENTAL_TABLES = {
    "marts.fct_reward_events": ["event_id"],
    "marts.user_reward_stats_daily": ["user_id", "event_date"],
    "marts.item_reward_stats_daily": ["item_id", "event_date"],
}


def ts(day: dt.date, hh: int, mm: int = 0, ss: int = 0, us: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hh, mm, ss, us, tzinfo=UTC)


def event(
    event_id,
    user_id,
    item_id,
    event_ts,
    watch=None,
    duration=None,
    rating=None,
    autoplay=False,
    **extra,
):
    return dict(
        event_id=event_id,
        user_id=user_id,
        item_id=item_id,
        event_ts=event_ts,
        watch_seconds=watch,
        item_duration_seconds=duration,
        rating=rating,
        autoplay=autoplay,
        **extra,
    )


def background_events(day: dt.date, seed: int) -> list[dict]:
    """A few users watching a few items every day, so splits and daily stats have some data."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(6):
        for k in range(int(rng.integers(1, 4))):
            duration = float(rng.choice([600.0, 1800.0, 3600.0]))
            rated = rng.random() < 0.3
            rows.append(
                event(
                    f"bg-{day.isoformat()}-{u}-{k}",
                    f"bg{u}",
                    f"i{int(rng.integers(0, 8))}",
                    ts(day, 6 + 5 * k, int(rng.integers(0, 60))),
                    watch=round(float(rng.uniform(0, 1.2)) * duration, 1),
                    duration=duration,
                    rating=int(rng.integers(1, 6)) if rated else None,
                    autoplay=bool(rng.random() < 0.3),
                )
            )
    return rows


# Sessionization, hand-computed: gaps 29:59 and 30:00 stay in the session, 30:01 starts one (s4);
# s4 and s5 share a timestamp and order by event_id; s6 (1.5 h later) and s7 (a week later) start
# sessions.
SESSION_EVENTS = [
    event("s1", "u_sess", "i1", ts(DAYS[1], 10, 0, 0), 600, 1800),
    # Idle gaps run from the end of the previous 10-minute playback: 29:59, 30:00, then 30:01.
    event("s2", "u_sess", "i2", ts(DAYS[1], 10, 39, 59), 600, 1800),
    event("s3", "u_sess", "i3", ts(DAYS[1], 11, 19, 59), 600, 1800),
    event("s5", "u_sess", "i5", ts(DAYS[1], 12, 0, 0), 600, 1800),
    event("s4", "u_sess", "i4", ts(DAYS[1], 12, 0, 0), 600, 1800),
    event("s6", "u_sess", "i6", ts(DAYS[1], 13, 0, 0), 600, 1800),
    event("s7", "u_sess", "i7", ts(DAYS[8], 20, 0, 0), 600, 1800),
]
EXPECTED_SESSIONS = {  # event_id: (user_event_index, session_index, position_in_session)
    "s1": (0, 0, 0),
    "s2": (1, 0, 1),
    "s3": (2, 0, 2),
    "s4": (3, 1, 0),
    "s5": (4, 1, 1),
    "s6": (5, 2, 0),
    "s7": (6, 3, 0),
}

# Rewards, hand-computed with the default mapping 1 + 4 * clip(watch / duration, 0, 1).
REWARD_EVENTS = [
    event("w1", "u_rew", "i1", ts(DAYS[3], 8), watch=10, duration=100, rating=4),  # rating wins
    event("w2", "u_rew", "i2", ts(DAYS[3], 9), watch=30, duration=60),  # half -> 3
    # 1.5x the duration is exactly the slack: kept, and clipped to 5
    event("w3", "u_rew", "i3", ts(DAYS[3], 10), watch=90, duration=60),
    event("w4", "u_rew", "i4", ts(DAYS[3], 11), watch=0, duration=60),  # nothing watched -> 1
    event("w5", "u_rew", "i5", ts(DAYS[3], 12)),  # no feedback at all
    event("w6", "u_rew", "i6", ts(DAYS[3], 13), rating=2),  # rating only
    event("w7", "u_rew", "i7", ts(DAYS[3], 14), watch=15, duration=60),  # quarter -> 2
]
EXPECTED_REWARDS = {
    "w1": (4.0, "rating"),
    "w2": (3.0, "watch_fraction"),
    "w3": (5.0, "watch_fraction"),
    "w4": (1.0, "watch_fraction"),
    "w5": (None, "none"),
    "w6": (2.0, "rating"),
    "w7": (2.0, "watch_fraction"),
}

# Broken rows, all in one file with an extra column; keyed by user_id -> the expected reason.
BROKEN_DAY = DAYS[2]
DUPLICATED = background_events(DAYS[0], seed=0)[0]
BROKEN_ROWS = [
    event(None, "q_no_event_id", "i1", ts(BROKEN_DAY, 8), device="tv"),
    event("q2", None, "i1", ts(BROKEN_DAY, 8), device="tv"),
    event("q3", "   ", "i1", ts(BROKEN_DAY, 8), device="tv"),
    event("q4", "q_no_item", None, ts(BROKEN_DAY, 8), device="tv"),
    event("q5", "q_no_ts", "i1", None, device="tv"),
    event("q6", "q_negative", "i1", ts(BROKEN_DAY, 8), watch=-5, duration=60, device="tv"),
    event("q7", "q_too_long", "i1", ts(BROKEN_DAY, 8), watch=100, duration=60, device="tv"),
    event("q8", "q_future", "i1", dt.datetime(2099, 1, 1, tzinfo=UTC), device="tv"),
    event("q9", "q_rating7", "i1", ts(BROKEN_DAY, 8), rating=7, device="tv"),
    event("q10", "q_multi", "i1", ts(BROKEN_DAY, 8), watch=-1, duration=60, rating=0, device="tv"),
    event("q11", "q_zero_duration", "i1", ts(BROKEN_DAY, 8), watch=0, duration=0, device="tv"),
    event("q12", "q_too_old", "i1", dt.datetime(1970, 1, 2, tzinfo=UTC), device="tv"),
    event("q13", "q_nan", "i1", ts(BROKEN_DAY, 8), watch=float("nan"), duration=60, device="tv"),
    dict(DUPLICATED, device="tv"),  # exact re-delivery of an event from an earlier file
    # the earlier copy of d1, but broken: the later valid copy is kept
    event("d1", "u_dup", "i1", ts(BROKEN_DAY, 9), rating=9, device="tv"),
    event("g1", "u_good_in_broken_file", "i2", ts(BROKEN_DAY, 8), 60, 120, device="phone"),
]
EXPECTED_QUARANTINE = {
    # (event_id, user_id) -> reason
    (None, "q_no_event_id"): "missing_event_id",
    ("q2", None): "missing_user_id",
    ("q3", "   "): "missing_user_id",
    ("q4", "q_no_item"): "missing_item_id",
    ("q5", "q_no_ts"): "missing_event_ts",
    ("q6", "q_negative"): "negative_watch_seconds",
    ("q7", "q_too_long"): "watch_exceeds_duration",
    ("q8", "q_future"): "future_event_ts",
    ("q9", "q_rating7"): "rating_out_of_range",
    ("q10", "q_multi"): "negative_watch_seconds; rating_out_of_range",
    ("q11", "q_zero_duration"): "non_positive_duration",
    ("q12", "q_too_old"): "event_ts_before_floor",
    ("q13", "q_nan"): "non_finite_watch_seconds",
    (DUPLICATED["event_id"], DUPLICATED["user_id"]): "duplicate_event_id",
    ("d1", "u_dup"): "rating_out_of_range; duplicate_event_id",
}

# The new day: ordinary events, a late event for an earlier day, a re-delivery.
LATE_EVENT = event("late1", "u_rew", "i9", ts(DAYS[4], 12), rating=5)
NEW_DAY_EXTRA = [LATE_EVENT, REWARD_EVENTS[0]]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """Build the tiny warehouse; yields (data_dir, work_dir, state), state filled as tests run."""
    data_dir = tmp_path_factory.mktemp("asft_data")
    work_dir = tmp_path_factory.mktemp("dbt_work")
    for i, day in enumerate(DAYS):
        rows = background_events(day, seed=i)
        rows += [r for r in SESSION_EVENTS + REWARD_EVENTS if r["event_ts"].date() == day]
        if day == BROKEN_DAY:
            rows.append(event("d1", "u_dup", "i1", ts(BROKEN_DAY, 10), watch=60, duration=120))
        write_partition(data_dir, day.isoformat(), rows)
    write_partition(data_dir, BROKEN_DAY.isoformat(), BROKEN_ROWS, name="part-broken")
    build = run_dbt(["build"], data_dir, work_dir)
    yield data_dir, work_dir, {"first_build": build}
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def incremental(warehouse):
    """Add the new day, run `dbt build` (incremental), snapshot, then `dbt run --full-refresh`."""
    data_dir, work_dir, state = warehouse
    write_partition(
        data_dir, NEW_DAY.isoformat(), background_events(NEW_DAY, seed=99) + NEW_DAY_EXTRA
    )
    state["incremental_build"] = run_dbt(
        ["build", "--exclude-resource-type", "unit_test"], data_dir, work_dir
    )
    compiled = (
        work_dir / "target" / "run" / "asft" / "models" / "marts" / "user_reward_stats_daily.sql"
    )
    state["incremental_sql"] = compiled.read_text()
    state["after_incremental"] = {
        t: _sorted(query(data_dir, f"select * from {t}"), k) for t, k in INCREMENTAL_TABLES.items()
    }
    state["late_stats"] = query(
        data_dir,
        "select * from marts.user_reward_stats_daily where user_id = 'u_rew' order by event_date",
    )
    run_dbt(["run", "--full-refresh"], data_dir, work_dir)
    state["after_full_refresh"] = {
        t: _sorted(query(data_dir, f"select * from {t}"), k) for t, k in INCREMENTAL_TABLES.items()
    }
    return state


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys).reset_index(drop=True)


def test_build_passes_with_broken_rows_quarantined(warehouse):
    _, _, state = warehouse
    out = state["first_build"].stdout
    assert "Completed successfully" in out
    assert "ERROR=0" in out and "SKIP=0" in out and "WARN=0" in out


def test_raw_rows_are_all_accounted_for(warehouse):
    data_dir, _, _ = warehouse
    counts = query(
        data_dir,
        """
        select
            (select count(*) from staging.stg_watch_events__checked) as n_checked,
            (select count(*) from staging.stg_watch_events) as n_good,
            (select count(*) from staging.quarantine_watch_events) as n_quarantined
        """,
    ).iloc[0]
    n_raw = sum(len(background_events(d, seed=i)) for i, d in enumerate(DAYS))
    n_raw += len(SESSION_EVENTS) + len(REWARD_EVENTS) + 1 + len(BROKEN_ROWS)
    assert counts.n_checked == n_raw
    assert counts.n_good + counts.n_quarantined == n_raw
    assert counts.n_quarantined == len(EXPECTED_QUARANTINE)


def test_quarantine_reasons_per_row(warehouse):
    data_dir, _, _ = warehouse
    q = query(data_dir, "select * from staging.quarantine_watch_events")
    got = {(_none(r.event_id), _none(r.user_id)): r.quarantine_reason for r in q.itertuples()}
    assert got == EXPECTED_QUARANTINE
    assert q.quarantined_at.notna().all()
    # raw values are preserved, extra columns included
    q6 = q[q.event_id == "q6"].iloc[0]
    assert q6.watch_seconds == -5
    assert '"device":"tv"' in q6.raw_record.replace(" ", "")
    assert q[q.event_id == "q9"].iloc[0].rating == 7


def test_good_rows_flow_on(warehouse):
    data_dir, _, _ = warehouse
    good = query(data_dir, "select * from staging.stg_watch_events")
    assert good.event_id.is_unique
    assert "g1" in set(good.event_id)  # a good row from the broken file
    assert "device" not in good.columns  # extra raw columns stay out of the marts
    # a re-delivery keeps the first copy (earlier file); of the d1 copies the valid one is kept
    dup = good[good.event_id == DUPLICATED["event_id"]].iloc[0]
    assert "date=2024-03-01" in dup.source_file
    d1 = good[good.event_id == "d1"].iloc[0]
    assert d1.rating is None or pd.isna(d1.rating)
    assert d1.watch_seconds == 60
    assert str(good.event_ts.dtype).endswith("UTC]")


def test_sessionization_hand_computed(warehouse):
    data_dir, _, _ = warehouse
    s = query(
        data_dir,
        "select * from intermediate.int_events_sessionized where user_id = 'u_sess' "
        "order by user_event_index",
    )
    got = {
        r.event_id: (r.user_event_index, r.session_index, r.position_in_session)
        for r in s.itertuples()
    }
    assert got == EXPECTED_SESSIONS
    assert list(s.session_id) == ["u_sess-0"] * 3 + ["u_sess-1"] * 2 + ["u_sess-2", "u_sess-3"]
    # s5 starts with s4 (same instant, ordered by event_id): its idle gap is minus s4's watch time.
    gaps = [None, 1799, 1800, 1801, -600, 3000, 7 * 86400 + 6 * 3600 + 50 * 60]
    assert [None if g != g else g for g in s.gap_seconds] == gaps
    sessions = query(
        data_dir,
        "select * from marts.fct_watch_sessions where user_id = 'u_sess' order by session_index",
    )
    assert list(sessions.n_events) == [3, 2, 1, 1]
    assert list(sessions.total_watch_seconds) == [1800, 1200, 600, 600]
    assert list(sessions.session_span_seconds) == [4799, 0, 0, 0]


def test_reward_mapping_hand_computed(warehouse):
    data_dir, _, _ = warehouse
    r = query(data_dir, "select * from marts.fct_reward_events where user_id = 'u_rew'")
    got = {
        x.event_id: (None if pd.isna(x.reward) else x.reward, x.reward_source)
        for x in r.itertuples()
    }
    assert got == EXPECTED_REWARDS


def test_user_sequences_and_leave_one_out(warehouse):
    data_dir, _, _ = warehouse
    with connect(data_dir) as con:
        table = con.sql("select * from marts.user_sequences order by user_id").to_arrow_table()
    assert pa.types.is_list(table.schema.field("item_ids").type)
    assert pa.types.is_list(table.schema.field("timestamps").type)
    rows = {r["user_id"]: r for r in table.to_pylist()}
    seq = rows["u_sess"]
    assert seq["event_ids"] == ["s1", "s2", "s3", "s4", "s5", "s6", "s7"]
    assert seq["item_ids"] == ["i1", "i2", "i3", "i4", "i5", "i6", "i7"]
    assert seq["session_indexes"] == [0, 0, 0, 1, 1, 2, 3]
    assert seq["timestamps"][0] == int(ts(DAYS[1], 10).timestamp())
    assert seq["sequence_length"] == 7
    rew = rows["u_rew"]
    assert rew["rewards"] == [4.0, 3.0, 5.0, 1.0, None, 2.0, 2.0]
    assert "u_good_in_broken_file" not in rows  # one event < min_sequence_length
    loo = query(
        data_dir,
        "select event_id, split from marts.split_leave_one_out_events "
        "where user_id in ('u_sess', 'u_dup')",
    )
    split = dict(zip(loo.event_id, loo.split, strict=True))
    assert split["s7"] == "test" and split["s6"] == "valid"
    assert {split[e] for e in ["s1", "s2", "s3", "s4", "s5"]} == {"train"}
    assert split["d1"] == "train"  # a one-event user is all train


def test_temporal_split_and_sequences(warehouse):
    data_dir, _, _ = warehouse
    cut = query(data_dir, "select * from marts.split_cutoffs").iloc[0]
    good = query(data_dir, "select event_ts from staging.stg_watch_events order by event_ts")
    epochs_ns = good.event_ts.astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    for name, q in [("valid_start", 0.8), ("test_start", 0.9)]:
        # the q-quantile of event_ts floored to the day (either neighbour of the quantile position)
        candidates = {
            pd.Timestamp(int(np.quantile(epochs_ns, q, method=m)), tz="UTC").date()
            for m in ("lower", "higher")
        }
        assert pd.Timestamp(cut[name]).date() in candidates
    assert cut.valid_start < cut.test_start
    st = query(data_dir, "select * from marts.split_temporal_events")
    assert set(st.split) == {"train", "valid", "test"}
    seqs = query(data_dir, "select * from marts.user_sequences_temporal where user_id = 'bg0'")
    by_split = {r.split: r for r in seqs.itertuples()}
    full = query(data_dir, "select * from marts.user_sequences where user_id = 'bg0'").iloc[0]
    assert list(by_split["test"].event_ids) == list(full.event_ids)
    n_train = (st[(st.user_id == "bg0")].split == "train").sum()
    assert by_split["train"].sequence_length == n_train
    assert list(by_split["valid"].event_ids[:n_train]) == list(by_split["train"].event_ids)


def test_reward_stats_are_point_in_time(warehouse):
    """Recompute every stats row in pandas from events strictly before its event_timestamp."""
    data_dir, _, _ = warehouse
    events = query(data_dir, "select * from marts.fct_reward_events")
    for entity in ("user", "item"):
        stats = query(data_dir, f"select * from marts.{entity}_reward_stats_daily")
        by_entity = dict(tuple(events.groupby(f"{entity}_id")))
        for row in stats.itertuples():
            ev = by_entity[getattr(row, f"{entity}_id")]
            past = ev[ev.event_ts < row.event_timestamp]
            rewards = past.reward.dropna()
            recent = past[past.event_date >= (row.event_date - dt.timedelta(days=6))]
            assert getattr(row, f"{entity}_n_events") == len(past)
            assert getattr(row, f"{entity}_n_rewarded") == len(rewards)
            _close(getattr(row, f"{entity}_reward_mean"), rewards.mean() if len(rewards) else None)
            _close(
                getattr(row, f"{entity}_reward_std"),
                rewards.std(ddof=1) if len(rewards) > 1 else None,
            )
            _close(
                getattr(row, f"{entity}_reward_mean_7d"),
                recent.reward.dropna().mean() if recent.reward.notna().any() else None,
            )
            assert getattr(row, f"{entity}_last_event_ts") == past.event_ts.max()
            assert row.event_timestamp == pd.Timestamp(
                row.event_date + dt.timedelta(days=1), tz="UTC"
            )
            if entity == "item":
                previous = past[
                    (past.event_date >= row.event_date - dt.timedelta(days=13))
                    & (past.event_date <= row.event_date - dt.timedelta(days=7))
                ]
                assert row.item_popularity_7d == len(recent)
                _close(row.item_trend_7d, (len(recent) + 1) / (len(previous) + 1))


def test_incremental_run_picks_up_new_and_late_data(incremental):
    assert "Completed successfully" in incremental["incremental_build"].stdout
    assert "delete from" in incremental["incremental_sql"]  # the incremental path ran
    late = incremental["late_stats"].set_index("event_date")
    # the late event (2024-03-05, rating 5) counts from its own day on
    assert late.loc[pd.Timestamp(DAYS[4]), "user_n_events"] == len(REWARD_EVENTS) + 1
    assert late.loc[pd.Timestamp(DAYS[4]), "user_n_events_day"] == 1
    _close(late.loc[pd.Timestamp(DAYS[4]), "user_reward_mean"], (4 + 3 + 5 + 1 + 2 + 2 + 5) / 7)
    rewards = incremental["after_incremental"]["marts.fct_reward_events"]
    assert "late1" in set(rewards.event_id)
    assert (rewards.event_id == "w1").sum() == 1  # the re-delivery was quarantined


@pytest.mark.parametrize("table", sorted(INCREMENTAL_TABLES))
def test_incremental_equals_full_refresh(incremental, table):
    inc = incremental["after_incremental"][table]
    full = incremental["after_full_refresh"][table]
    assert pd.Timestamp(NEW_DAY) in set(inc.event_date)
    pd.testing.assert_frame_equal(inc, full, check_exact=True)  # fixed-point sums: bit-identical


def _none(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _close(got, expected):
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        assert got is None or pd.isna(got), got
    else:
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)
