"""The online store switches to Redis by config and serves the same values as sqlite (real
Feast, a real redis-server on loopback)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from redis_server import REDIS_SERVER, redis_server
from test_features_store import write_tiny_warehouse

from features.export import export_feature_tables
from features.online import online_reward_features
from features.store import apply_repo, feature_store, materialize_latest, online_store_settings

pytestmark = pytest.mark.skipif(
    not Path(REDIS_SERVER).exists() and not os.environ.get("CI"),
    reason="Debian's redis-server is not installed (make sysdeps); CI always runs this",
)

USERS, ITEMS = ["u1", "u2", "u9"], ["i1", "i2", "i9"]  # u9 / i9: never materialized


def _served(root: Path) -> dict:
    store = feature_store(root)
    return {u: online_reward_features(u, ITEMS, store) for u in USERS}


def test_redis_online_store_serves_what_sqlite_serves(tmp_path):
    sqlite_root, redis_root = tmp_path / "sqlite", tmp_path / "redis"
    sqlite_root.mkdir()
    write_tiny_warehouse(sqlite_root)
    export_feature_tables(sqlite_root)
    shutil.copytree(sqlite_root, redis_root)

    apply_repo(sqlite_root)
    materialize_latest(sqlite_root)
    expected = _served(sqlite_root)
    assert expected["u1"]["user"]["user_reward_mean"] == 4.0  # the latest u1 row
    assert expected["u9"]["user"]["user_reward_mean"] is None

    with redis_server(tmp_path) as address:
        apply_repo(redis_root, online_store=online_store_settings("redis", redis_root, address))
        assert feature_store(redis_root).config.online_store.type == "redis"
        materialize_latest(redis_root)
        assert _served(redis_root) == expected
