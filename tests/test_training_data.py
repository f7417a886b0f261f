"""The data path on a hand-made `user_sequences` table: ids, order, splits, padding, seen items."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from training.core.data import (
    Vocab,
    build_dataset,
    read_user_sequences,
    sequences_from_interactions,
)


def table() -> pa.Table:
    # Items sort to v=1 w=2 x=3 y=4 z=5; users a=1 b=2 c=3. User c arrives out of time order.
    return pa.table(
        {
            "user_id": ["a", "b", "c"],
            "item_ids": [["x", "y", "z", "w", "v"], ["y", "x"], ["z", "x", "y"]],
            "timestamps": [[10, 20, 30, 40, 50], [5, 6], [30, 10, 20]],
            "rewards": [[5.0, None, 3.0, 4.0, 1.0], [2.0, 2.0], [1.0, 2.0, 3.0]],
            "length": [5, 2, 3],
        }
    )


def test_vocab_and_events_are_dense_sorted_and_keep_nulls():
    d = build_dataset(table(), max_len=3)
    assert d.vocab.items.ids == ["v", "w", "x", "y", "z"]
    assert d.vocab.users.ids == ["a", "b", "c"]
    ev = d.events
    assert ev.offsets.tolist() == [0, 5, 7, 10]
    assert ev.items.tolist() == [3, 4, 5, 2, 1, 4, 3, 3, 4, 5]  # c re-sorted by time
    assert ev.timestamps[7:].tolist() == [10, 20, 30]
    assert np.isnan(ev.rewards[1]) and ev.rewards[9] == 1.0  # c's z (reward 1.0) is now last
    assert Vocab.from_dict(d.vocab.to_dict()).items.ids == d.vocab.items.ids


def test_leave_one_out_split():
    d = build_dataset(table(), max_len=3)
    # a: train x y z, valid w, test v; b (< 3 events): train only; c: train x, valid y, test z.
    assert d.train.starts.tolist() == [0, 5, 7] and d.train.ends.tolist() == [3, 7, 8]
    assert d.valid.ends.tolist() == [3, 8] and d.test.ends.tolist() == [4, 9]
    assert d.events.items[d.test.ends].tolist() == [1, 5]
    assert len(d.windows) == 2  # c's one train event has no target


def test_train_batch_is_left_padded_and_shifted():
    d = build_dataset(table(), max_len=3)
    b = d.train_batch(np.arange(len(d.windows)))
    assert b["item_ids"].tolist() == [[3, 4], [0, 4]]  # a: x y -> y z; b: y -> x
    assert b["target_ids"].tolist() == [[4, 5], [0, 3]]
    assert b["target_index"].tolist() == [[1, 2], [-1, 6]]
    assert b["timestamps"].tolist() == [[10, 20], [0, 5]]
    assert b["decision_ts"].tolist() == [[20, 30], [0, 6]]  # each target's own time


def test_eval_batch_windows_and_seen_items():
    d = build_dataset(table(), max_len=3)
    b = d.eval_batch(d.test, np.arange(2))
    # a's history x y z w is cut to the newest 3; seen items still cover all 4.
    assert b["item_ids"].tolist() == [[4, 5, 2], [0, 3, 4]]
    assert b["target_ids"].tolist() == [1, 5]
    assert b["seen_rows"].tolist() == [0, 0, 0, 0, 1, 1]
    assert b["seen_items"].tolist() == [3, 4, 5, 2, 3, 4]
    # The history shifted by one: the last query time is the target's (the request time).
    assert b["timestamps"].tolist() == [[20, 30, 40], [0, 10, 20]]
    assert b["decision_ts"].tolist() == [[30, 40, 50], [0, 20, 30]]


def test_windows_cover_every_train_target_once():
    d = build_dataset(table(), max_len=1)
    b = d.train_batch(np.arange(len(d.windows)))
    targets = sorted(b["target_index"][b["target_index"] >= 0].tolist())
    assert targets == [1, 2, 6]
    assert b["item_ids"].shape == (3, 1)


def test_train_batch_carries_the_history_before_each_window():
    d = build_dataset(table(), max_len=1)
    b = d.train_batch(np.arange(len(d.windows)))
    prior = {t: [] for t in b["target_index"][:, -1].tolist()}
    for row, item in zip(b["prior_rows"].tolist(), b["prior_items"].tolist(), strict=True):
        prior[int(b["target_index"][row, -1])].append(item)
    # a's window y -> z saw x before it; a's x -> y and b's y -> x start at the user's first event.
    assert prior == {1: [], 2: [3], 6: []}


def test_temporal_split_sees_full_history():
    d = build_dataset(table(), max_len=10, split="temporal", valid_start=25, test_start=45)
    assert d.train.ends.tolist() == [2, 7, 9]  # events before 25
    assert d.valid.ends.tolist() == [2, 3, 9] and d.test.ends.tolist() == [4]
    b = d.eval_batch(d.valid, np.arange(3))
    assert b["item_ids"][1].tolist() == [3, 4, 5]  # w's history includes the valid-period z
    with pytest.raises(ValueError):
        build_dataset(table(), split="temporal", valid_start=50, test_start=40)


def test_train_item_counts_and_vocab_reuse():
    d = build_dataset(table(), max_len=3)
    assert d.train_item_counts().tolist() == [0, 0, 0, 3, 2, 1]
    small = table().slice(1, 1)  # only b; reusing the full vocab keeps ids stable
    d2 = build_dataset(small, max_len=3, vocab=d.vocab)
    assert d2.events.items.tolist() == [4, 3] and d2.n_items == 5


def test_sequences_from_interactions_orders_by_time_then_row():
    raw = pa.table(
        {
            "user_id": ["2", "1", "1", "1"],
            "item_id": ["9", "a", "b", "c"],
            "rating": [4.0, 1.0, None, 3.0],
            "timestamp": [7.0, 5.0, 3.0, 5.0],
        }
    )
    seq = sequences_from_interactions(raw)
    assert seq["user_id"].to_pylist() == ["1", "2"]
    assert seq["item_ids"].to_pylist() == [["b", "a", "c"], ["9"]]
    assert seq["rewards"].to_pylist() == [[None, 1.0, 3.0], [4.0]]
    assert seq["length"].to_pylist() == [3, 1]


def test_read_user_sequences_from_parquet_and_recbole_inter(tmp_path):
    import pyarrow.parquet as pq

    pq.write_table(table(), tmp_path / "seq.parquet")
    assert read_user_sequences(tmp_path / "seq.parquet").equals(table())
    inter = tmp_path / "x.inter"
    inter.write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "7\t30\t4\t100\n7\t10\t5\t50\n8\t10\t3\t60\n"
    )
    seq = read_user_sequences(inter)
    assert seq["user_id"].to_pylist() == ["7", "8"]
    assert seq["item_ids"].to_pylist() == [["10", "30"], ["10"]]
    assert seq["timestamps"].to_pylist() == [[50.0, 100.0], [60.0]]


def test_temporal_cutoffs_accept_datetimes_naive_as_utc():
    from datetime import UTC, datetime

    tab = table()
    cut = [datetime.fromtimestamp(x, UTC) for x in (25, 45)]
    a = build_dataset(tab, split="temporal", valid_start=cut[0], test_start=cut[1])
    naive = [c.replace(tzinfo=None) for c in cut]
    b = build_dataset(tab, split="temporal", valid_start=naive[0], test_start=naive[1])
    assert a.valid.ends.tolist() == b.valid.ends.tolist() == [2, 3, 9]
