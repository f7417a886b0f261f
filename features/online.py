"""Online reads for the reward model's scoring path, and the same rows read straight from sqlite.

`online_reward_features` goes through Feast's `get_online_features` (whatever online store the
config names); `direct_sqlite_read` opens the sqlite file itself and decodes the same rows, the
floor a Feast read is compared with in benchmarks/feature_latency.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from feast.infra.key_encoding_utils import serialize_entity_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

from features.export import ITEM_STATS, RECENT_HISTORY, USER_STATS, OfflineTable
from features.retrieval import ITEM_FEATURES, USER_FEATURES

HISTORY_FEATURES: list[str] = ["recent_item_ids", "recent_event_ts"]


def _refs(table: OfflineTable, features: Sequence[str]) -> list[str]:
    return [f"{table.view}:{f}" for f in features]


def online_user_features(store, user_id: str) -> dict[str, Any]:
    """{"user": {USER_FEATURES...}, "history": {HISTORY_FEATURES...}} in one Feast online read."""
    if not isinstance(user_id, str) or not user_id:
        raise ValueError(f"user_id must be a non-empty string, got {user_id!r}")
    got = store.get_online_features(
        features=_refs(USER_STATS, USER_FEATURES) + _refs(RECENT_HISTORY, HISTORY_FEATURES),
        entity_rows=[{"user_id": user_id}],
    ).to_dict()
    return {
        "user": {f: got[f][0] for f in USER_FEATURES},
        "history": {f: got[f][0] for f in HISTORY_FEATURES},
    }


def online_item_features(store, item_ids: list[str]) -> dict[str, dict[str, Any]]:
    """{item_id: {ITEM_FEATURES...}} for the candidate titles, in one Feast online read."""
    if not item_ids:
        return {}
    got = store.get_online_features(
        features=_refs(ITEM_STATS, ITEM_FEATURES), entity_rows={"item_id": list(item_ids)}
    ).to_dict()
    return {item: {f: got[f][i] for f in ITEM_FEATURES} for i, item in enumerate(got["item_id"])}


def online_reward_features(user_id: str, item_ids: list[str], store=None) -> dict[str, Any]:
    """{"user": {feature: value}, "items": {item_id: {feature: value}}, "history":
    {"recent_item_ids": [...], "recent_event_ts": [...]}} via Feast's get_online_features;
    None where the store holds no value (an unknown user or title)."""
    if store is None:
        from features.store import feature_store

        store = feature_store()
    user = online_user_features(store, user_id)
    return {**user, "items": online_item_features(store, item_ids)}


def _entity_key(join_key: str, value: str) -> bytes:
    return serialize_entity_key(
        EntityKey(join_keys=[join_key], entity_values=[Value(string_val=value)]),
        entity_key_serialization_version=3,
    )


def _decode(blob: bytes) -> Any:
    value = Value()
    value.ParseFromString(blob)
    kind = value.WhichOneof("val")
    if kind is None or kind == "null_val":
        return None
    got = getattr(value, kind)
    return list(got.val) if kind.endswith("_list_val") else got


class DirectSqliteReader:
    """Reads the online sqlite file without Feast: one SELECT per view, protobuf values decoded."""

    def __init__(self, db_path: Path, project: str = "asft") -> None:
        if not Path(db_path).exists():
            raise FileNotFoundError(f"no online store at {db_path}: materialize first")
        self.con = sqlite3.connect(str(db_path), check_same_thread=False)
        self.project = project

    def close(self) -> None:
        self.con.close()

    def read(
        self, table: OfflineTable, keys: Sequence[str], features: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        blobs = {_entity_key(table.join_key, k): k for k in keys}
        marks = ",".join("?" * len(blobs))
        fmarks = ",".join("?" * len(features))
        rows = self.con.execute(
            f'select entity_key, feature_name, value from "{self.project}_{table.view}" '
            f"where entity_key in ({marks}) and feature_name in ({fmarks})",
            [*blobs, *features],
        ).fetchall()
        out: dict[str, dict[str, Any]] = {k: dict.fromkeys(features) for k in keys}
        for blob, name, value in rows:
            out[blobs[blob]][name] = _decode(value)
        return out

    def user_features(self, user_id: str) -> dict[str, Any]:
        """The same dict as `online_user_features`."""
        return {
            "user": self.read(USER_STATS, [user_id], USER_FEATURES)[user_id],
            "history": self.read(RECENT_HISTORY, [user_id], HISTORY_FEATURES)[user_id],
        }

    def item_features(self, item_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The same dict as `online_item_features`."""
        items = self.read(ITEM_STATS, item_ids, ITEM_FEATURES) if item_ids else {}
        return {i: items[i] for i in item_ids}

    def reward_features(self, user_id: str, item_ids: list[str]) -> dict[str, Any]:
        """The same dict as `online_reward_features`."""
        return {**self.user_features(user_id), "items": self.item_features(item_ids)}


def direct_sqlite_read(
    user_id: str, item_ids: list[str], db_path: Path | None = None
) -> dict[str, Any]:
    """One-shot direct read (opens and closes the file); see DirectSqliteReader for repeated use."""
    if db_path is None:
        from features.store import online_db_path

        db_path = online_db_path()
    reader = DirectSqliteReader(db_path)
    try:
        return reader.reward_features(user_id, item_ids)
    finally:
        reader.close()


def sample_user(root: Path | None = None, n_items: int = 3) -> tuple[str, list[str]]:
    """A real user for a smoke lookup: the most recently active one, with their last titles."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from features.export import offline_path

    table = pq.read_table(
        offline_path(RECENT_HISTORY, root),
        columns=["user_id", "event_timestamp", "recent_item_ids"],
    )
    if table.num_rows == 0:
        raise LookupError("user_recent_history is empty: no user to look up")
    latest = pc.index(table["event_timestamp"], pc.max(table["event_timestamp"])).as_py()
    items = table["recent_item_ids"][latest].as_py()
    return table["user_id"][latest].as_py(), list(dict.fromkeys(reversed(items)))[:n_items]
