"""The Feast feature store on a tiny hand-written warehouse, with real Feast (file offline store,
sqlite online store): point-in-time historical retrieval, apply + materialize, online reads."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from common.paths import warehouse_path
from features.export import export_feature_tables
from features.retrieval import (
    ITEM_FEATURES,
    USER_FEATURES,
    historical_item_features,
    historical_reward_features,
    historical_user_features,
)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# u1 has stats rows stamped at the end of Jan 2 and Jan 5; u2 at the end of Jan 3.
USER_ROWS = [
    ("u1", "2025-01-02", 2, 2, 2, 3.0, 1.0, 2, 2, 3.0),
    ("u1", "2025-01-05", 1, 3, 3, 4.0, 1.5, 1, 1, 5.0),
    ("u2", "2025-01-03", 4, 4, 3, 2.0, None, 4, 3, 2.0),
]
ITEM_ROWS = [
    ("i1", "2025-01-02", 3, 3, 2, 3.5, 0.5, 3, 0, 4.0, 3.5),
    ("i1", "2025-01-04", 1, 4, 3, 3.0, 0.7, 4, 0, 5.0, 3.0),
    ("i2", "2025-01-02", 2, 2, 2, 1.5, 0.7, 2, 0, 3.0, 1.5),
]


def write_tiny_warehouse(root) -> None:
    """The three marts the feature store reads, with the dbt models' column names and types."""
    with duckdb.connect(str(warehouse_path(root))) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute("create schema marts")
        con.execute(
            """create table marts.user_reward_stats_daily (user_id varchar, event_date date,
            event_timestamp timestamptz, user_n_events_day bigint, user_n_events bigint,
            user_n_rewarded bigint, user_reward_mean double, user_reward_std double,
            user_n_events_7d bigint, user_n_rewarded_7d bigint, user_reward_mean_7d double)"""
        )
        for u, day, *figures in USER_ROWS:
            con.execute(
                "insert into marts.user_reward_stats_daily values "
                "(?, ?::date, ?::date + interval 1 day, ?, ?, ?, ?, ?, ?, ?, ?)",
                [u, day, day, *figures],
            )
        con.execute(
            """create table marts.item_reward_stats_daily (item_id varchar, event_date date,
            event_timestamp timestamptz, item_n_events_day bigint, item_n_events bigint,
            item_n_rewarded bigint, item_reward_mean double, item_reward_std double,
            item_popularity_7d bigint, item_popularity_prev_7d bigint, item_trend_7d double,
            item_reward_mean_7d double)"""
        )
        for i, day, *figures in ITEM_ROWS:
            con.execute(
                "insert into marts.item_reward_stats_daily values "
                "(?, ?::date, ?::date + interval 1 day, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [i, day, day, *figures],
            )
        con.execute(
            """create table marts.user_recent_history as
            select 'u1' as user_id, '2025-01-05 20:00:00+00'::timestamptz as event_timestamp,
                ['i2', 'i1'] as recent_item_ids,
                [1736100000.5, 1736107200.0]::double[] as recent_event_ts,
                2::bigint as n_recent_events
            union all
            select 'u2', '2025-01-03 09:00:00+00'::timestamptz, ['i1'],
                [1735894800.0]::double[], 1"""
        )


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    from features.store import apply_repo, materialize_latest

    root = tmp_path_factory.mktemp("feast")
    write_tiny_warehouse(root)
    exported = export_feature_tables(root)
    assert exported["views"]["user_reward_stats"]["rows"] == len(USER_ROWS)
    applied = apply_repo(root)
    assert applied["feature_services"] == ["reward_model_features"]
    assert applied["entities"] == ["title", "user"]
    materialized = materialize_latest(root)
    assert materialized["entities_per_view"] == {
        "user_reward_stats": 2,
        "title_reward_stats": 2,
        "user_recent_history": 2,
    }
    return root


def test_point_in_time_never_uses_a_later_row_and_never_drops_rows(store_root):
    labels = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u1", "u9", "u1", "u2", "u1"],
            "event_timestamp": [
                ts("2025-01-04 23:59:59"),  # the Jan 5 row (stamped Jan 6 00:00) is later: Jan 2's
                ts("2025-01-01 12:00:00"),  # older than any u1 row: NaN, kept
                ts("2025-01-06 00:00:00"),  # exactly at the stamp: used (<=)
                ts("2025-01-03 00:00:00"),  # exactly at the Jan 2 row's stamp
                ts("2025-01-05 00:00:00"),  # unknown user: NaN, kept
                ts("2025-01-05 23:59:59.999999"),  # one microsecond before the stamp
                ts("2025-03-01 00:00:00"),  # long after: the latest row (no TTL)
                ts("2025-01-04 23:59:59"),  # a duplicate (key, t) row stays a row
            ],
            "label": np.arange(8.0),
        },
        index=[70, 10, 60, 20, 50, 30, 40, 0],
    )
    got = historical_user_features(labels, root=store_root)
    pd.testing.assert_index_equal(got.index, labels.index)
    pd.testing.assert_frame_equal(got[labels.columns], labels)
    assert all(got[f].dtype == np.float64 for f in USER_FEATURES)
    means = got["user_reward_mean"].tolist()
    assert means[0] == 3.0 and means[7] == 3.0
    assert math.isnan(means[1]) and math.isnan(means[4])
    assert means[2] == 4.0 and means[3] == 3.0 and means[5] == 3.0 and means[6] == 2.0
    assert got["user_n_events"].iloc[[0, 2, 3]].tolist() == [2.0, 3.0, 2.0]
    assert math.isnan(got["user_reward_std"].iloc[6])  # a null feature stays NaN


def test_reward_features_join_users_and_titles_point_in_time(store_root):
    labels = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u1"],
            "item_id": ["i1", "i1", "i2"],
            "event_timestamp": [
                ts("2025-01-04 12:00:00"),  # i1's Jan 4 row is stamped Jan 5: Jan 2's is used
                ts("2025-01-05 00:00:00"),  # exactly at i1's Jan 4 stamp
                ts("2025-01-02 23:00:00"),  # before every row of u1 and i2
            ],
        }
    )
    got = historical_reward_features(labels, root=store_root)
    assert list(got.columns) == [*labels.columns, *USER_FEATURES, *ITEM_FEATURES]
    assert got["item_reward_mean"].tolist()[:2] == [3.5, 3.0]
    assert got["item_trend_7d"].tolist()[:2] == [4.0, 5.0]
    assert got.iloc[2][USER_FEATURES + ITEM_FEATURES].isna().all()
    items = historical_item_features(labels[["item_id", "event_timestamp"]], root=store_root)
    pd.testing.assert_frame_equal(items[ITEM_FEATURES], got[ITEM_FEATURES])


def test_bad_entity_frames_are_refused_with_the_reason(store_root):
    naive = pd.DataFrame({"user_id": ["u1"], "event_timestamp": [datetime(2025, 1, 3)]})
    with pytest.raises(TypeError, match="tz-aware"):
        historical_user_features(naive, root=store_root)
    with pytest.raises(KeyError, match="user_id"):
        historical_user_features(
            pd.DataFrame({"event_timestamp": [ts("2025-01-03 00:00")]}), root=store_root
        )


def test_online_features_of_a_materialized_user_equal_the_latest_warehouse_rows(store_root):
    from features.online import online_reward_features
    from features.store import feature_store

    store = feature_store(store_root)
    got = online_reward_features("u1", ["i1", "i2", "i404"], store=store)
    with duckdb.connect(str(warehouse_path(store_root)), read_only=True) as con:
        user = con.execute(
            f"select {', '.join(USER_FEATURES)} from marts.user_reward_stats_daily "
            "where user_id = 'u1' order by event_timestamp desc limit 1"
        ).fetchone()
        item = con.execute(
            f"select {', '.join(ITEM_FEATURES)} from marts.item_reward_stats_daily "
            "where item_id = 'i1' order by event_timestamp desc limit 1"
        ).fetchone()
    assert got["user"] == dict(zip(USER_FEATURES, user, strict=True))
    assert got["items"]["i1"] == dict(zip(ITEM_FEATURES, item, strict=True))
    assert got["items"]["i2"]["item_reward_mean"] == 1.5
    assert all(v is None for v in got["items"]["i404"].values())
    assert got["history"] == {
        "recent_item_ids": ["i2", "i1"],
        "recent_event_ts": [1736100000.5, 1736107200.0],
    }


def test_direct_sqlite_read_equals_the_feast_online_read(store_root):
    from features.online import direct_sqlite_read, online_reward_features
    from features.store import feature_store, online_db_path

    store = feature_store(store_root)
    for user, items in [("u1", ["i1", "i2"]), ("u2", ["i2", "i404"]), ("u404", [])]:
        feast_read = online_reward_features(user, items, store=store)
        direct = direct_sqlite_read(user, items, db_path=online_db_path(store_root))
        assert direct == feast_read


def test_materialize_refuses_without_exported_files(tmp_path):
    from features.store import materialize_latest

    with pytest.raises(FileNotFoundError, match="feature_tables"):
        materialize_latest(tmp_path, store=object())


def test_rematerializing_replaces_entities_gone_from_the_warehouse(store_root):
    """Runs near the end: drops u2 from the warehouse, then export + materialize again."""
    from features.online import online_reward_features
    from features.store import feature_store, materialize_latest

    with duckdb.connect(str(warehouse_path(store_root))) as con:
        for table in ("user_reward_stats_daily", "user_recent_history"):
            con.execute(f"delete from marts.{table} where user_id = 'u2'")
    export_feature_tables(store_root)
    figures = materialize_latest(store_root)
    assert figures["entities_per_view"]["user_reward_stats"] == 1
    got = online_reward_features("u2", [], store=feature_store(store_root))
    assert all(v is None for v in got["user"].values())


def test_a_ttl_expires_rows_point_in_time_and_still_drops_no_row(store_root):
    """Runs last: re-applies the views with a 3-day TTL (exact timestamps, no day flooring)."""
    from features.store import apply_repo

    apply_repo(store_root, ttl=timedelta(days=3))
    labels = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u2", "u1"],
            "event_timestamp": [
                ts("2025-01-04 23:59:59"),  # Jan 2's row (stamped Jan 3 00:00) is 2 days old
                ts("2025-01-06 00:00:00"),  # exactly at the Jan 5 row's stamp
                ts("2025-01-05 23:59:59.999999"),  # Jan 2's row, within 3 days
                ts("2025-03-01 00:00:00"),  # u2's only row is older than the TTL: NaN, kept
                ts("2025-01-06 00:00:01"),
            ],
        }
    )
    got = historical_user_features(labels, root=store_root)
    means = got["user_reward_mean"].tolist()
    assert means[:3] == [3.0, 4.0, 3.0] and means[4] == 4.0
    assert math.isnan(means[3])
    pd.testing.assert_frame_equal(got[labels.columns], labels)
