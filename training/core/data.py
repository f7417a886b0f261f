"""User sequences (the warehouse's `user_sequences` table) -> dense ids, splits, padded batches.

Input contract, one row per user: `user_id` string, `item_ids` list<string> ordered by time,
`timestamps` list<int64|double> epoch seconds, `rewards` list<double> (1-5, nulls allowed),
`length` int. Everything below works on the flattened list values plus per-user offsets with
numpy/pyarrow.compute: no Python loop ever touches an event.

Batches are left-padded (right-aligned): the most recent event is always the last column, so the
hidden state that predicts "what next" is `h[:, -1]` for every row. Id 0 is padding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

PAD = 0
SplitKind = Literal["leave_one_out", "temporal"]


@dataclass
class IdMap:
    """String ids <-> dense ids 1..n (0 = padding). Sorted, so independent of row order."""

    ids: list[str]

    def __post_init__(self) -> None:
        self._arrow = pa.array(self.ids, pa.string())

    @classmethod
    def fit(cls, values: pa.Array | pa.ChunkedArray) -> IdMap:
        unique = pc.unique(values.cast(pa.string())).drop_null()
        return cls(unique.take(pc.sort_indices(unique)).to_pylist())

    def encode(self, values: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Dense ids (int64); ids not in the map become 0."""
        idx = pc.index_in(values.cast(pa.string()), value_set=self._arrow)
        return pc.fill_null(pc.add(idx.cast(pa.int64()), 1), 0).to_numpy()

    def decode(self, dense: np.ndarray) -> list[str | None]:
        return [self.ids[i - 1] if i > 0 else None for i in np.asarray(dense).tolist()]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Vocab:
    """Item and user id maps, stored with every checkpoint (and as vocab.json beside it)."""

    items: IdMap
    users: IdMap

    def to_dict(self) -> dict[str, list[str]]:
        return {"items": self.items.ids, "users": self.users.ids}

    @classmethod
    def from_dict(cls, d: dict[str, list[str]]) -> Vocab:
        return cls(IdMap(list(d["items"])), IdMap(list(d["users"])))

    def save_json(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def load_json(cls, path: Path) -> Vocab:
        return cls.from_dict(json.loads(Path(path).read_text()))


@dataclass
class Events:
    """All events, flattened in user-row order and sorted by time within each user (CSR layout)."""

    users: np.ndarray  # [U] dense user id of each row
    offsets: np.ndarray  # [U+1] row r owns events offsets[r]:offsets[r+1]
    items: np.ndarray  # [E] dense item id
    timestamps: np.ndarray  # [E] float64 epoch seconds
    rewards: np.ndarray  # [E] float32, NaN where null
    event_ids: np.ndarray | None = None  # [E] source event ids (str) when the table has them

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def row_of_event(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.users)), self.lengths)


@dataclass
class Split:
    """Supervised examples as flat event indices.

    Train: inputs are events [start, end-1), targets are events [start+1, end) (next-item at
    every position). Valid/test: `end` is the target event; the history is [start, end).
    """

    starts: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return len(self.ends)


def seeded_subset(n: int, at_most: int | None) -> np.ndarray:
    """Indices 0..n-1, ascending: every one, or a seeded sample of `at_most` of them (the same
    sample on every run)."""
    if at_most is None or n <= at_most:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, at_most, replace=False))


def _window(ends: np.ndarray, lo: np.ndarray, width: int) -> np.ndarray:
    """[B, width] flat indices of events [max(lo, end - width), end), right-aligned, -1 = pad."""
    idx = ends[:, None] - width + np.arange(width)[None, :]
    return np.where(idx >= lo[:, None], idx, -1)


def _gather(values: np.ndarray, idx: np.ndarray, fill: float | int) -> np.ndarray:
    out = values[np.maximum(idx, 0)]
    out[idx < 0] = fill
    return out


def _ranges(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated aranges [starts[i], ends[i]) and the i each element came from."""
    lengths = ends - starts
    which = np.repeat(np.arange(len(starts)), lengths)
    first = np.cumsum(lengths) - lengths
    return np.arange(lengths.sum()) - np.repeat(first, lengths) + np.repeat(starts, lengths), which


@dataclass
class SequenceData:
    vocab: Vocab
    events: Events
    train: Split  # one per user: the events training may use
    valid: Split
    test: Split
    max_len: int
    split: SplitKind
    windows: Split  # train sequences cut into chunks of <= max_len targets: what batches are of

    @property
    def n_items(self) -> int:
        return len(self.vocab.items)

    def eval_split(self, name: str) -> Split:
        return {"valid": self.valid, "test": self.test}[name]

    def train_batch(self, rows: np.ndarray) -> dict[str, Any]:
        """Padded next-item batch for training windows `rows` (indices into `windows`)."""
        lo, e = self.windows.starts[rows], self.windows.ends[rows]
        width = int((e - 1 - lo).max())
        inp, tgt = _window(e - 1, lo, width), _window(e, lo + 1, width)
        ev = self.events
        return {
            "item_ids": torch.from_numpy(_gather(ev.items, inp, PAD)),
            "timestamps": torch.from_numpy(_gather(ev.timestamps, inp, 0.0)),
            "target_ids": torch.from_numpy(_gather(ev.items, tgt, PAD)),
            # When each position's decision is made: its target's time (padding: 0).
            "decision_ts": torch.from_numpy(_gather(ev.timestamps, tgt, 0.0)),
            "target_index": tgt,  # flat event index of each target, -1 = padding (for weights)
            # The user's events before the window (seen at every position of it), flat: row
            # `prior_rows[k]` of the batch saw `prior_items[k]`.
            **self._prior(lo),
        }

    def _prior(self, lo: np.ndarray) -> dict[str, torch.Tensor]:
        ev = self.events
        starts = ev.offsets[np.searchsorted(ev.offsets, lo, side="right") - 1]
        flat, which = _ranges(starts, lo)
        return {
            "prior_rows": torch.from_numpy(which),
            "prior_items": torch.from_numpy(ev.items[flat]),
        }

    def eval_batch(self, split: Split, rows: np.ndarray) -> dict[str, Any]:
        """History windows, targets and seen items for evaluation examples `rows` of `split`."""
        s, t = split.starts[rows], split.ends[rows]
        lo = np.maximum(s, t - self.max_len)
        idx = _window(t, lo, int((t - lo).max()))
        ev = self.events
        # "Seen" = the user's whole history before the target, not only the model's window.
        flat, which = _ranges(s, t)
        return {
            "item_ids": torch.from_numpy(_gather(ev.items, idx, PAD)),
            "timestamps": torch.from_numpy(_gather(ev.timestamps, idx, 0.0)),
            "target_ids": torch.from_numpy(ev.items[t]),
            # The history shifted by one: the last decision is made at the target's time.
            "decision_ts": torch.from_numpy(
                _gather(ev.timestamps, np.where(idx >= 0, idx + 1, -1), 0.0)
            ),
            "seen_rows": torch.from_numpy(which),
            "seen_items": torch.from_numpy(ev.items[flat]),
        }

    def train_item_counts(self) -> np.ndarray:
        """How often each item occurs in the training sequences ([n_items + 1], index 0 = pad)."""
        flat, _ = _ranges(self.train.starts, self.train.ends)
        return np.bincount(self.events.items[flat], minlength=self.n_items + 1)

    def summary(self) -> dict[str, Any]:
        lengths = self.events.lengths
        return {
            "users": int(len(lengths)),
            "items": self.n_items,
            "events": int(lengths.sum()),
            "median_length": float(np.median(lengths)) if len(lengths) else 0.0,
            "split": self.split,
            "max_len": self.max_len,
            "train_sequences": len(self.train),
            "train_windows": len(self.windows),
            "train_targets": int(np.maximum(self.train.ends - self.train.starts - 1, 0).sum()),
            "valid_targets": len(self.valid),
            "test_targets": len(self.test),
        }


def _epoch_seconds(x: float | int | datetime | None) -> float | None:
    if x is None or isinstance(x, int | float):
        return x
    return (x if x.tzinfo else x.replace(tzinfo=UTC)).timestamp()  # naive = UTC, as in the logs


def _flat(table: pa.Table, name: str) -> tuple[pa.Array, np.ndarray]:
    """Flattened values of a list column and its per-row lengths."""
    col = table.column(name).combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(col), 0).to_numpy().astype(np.int64)
    return pc.list_flatten(col), lengths


def _events(table: pa.Table, vocab: Vocab) -> Events:
    items, lengths = _flat(table, "item_ids")
    ts, ts_len = _flat(table, "timestamps")
    if pa.types.is_timestamp(ts.type):
        ts = pc.divide(ts.cast(pa.int64()), {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[ts.type.unit])
    if "rewards" in table.column_names:
        rw, rw_len = _flat(table, "rewards")
    else:
        rw, rw_len = pa.nulls(int(lengths.sum()), pa.float64()), lengths
    if not (np.array_equal(lengths, ts_len) and np.array_equal(lengths, rw_len)):
        raise ValueError("item_ids, timestamps and rewards must have the same length in every row")
    item = vocab.items.encode(items)
    time = pc.fill_null(ts.cast(pa.float64()), np.nan).to_numpy()
    reward = pc.fill_null(rw.cast(pa.float64()), np.nan).to_numpy().astype(np.float32)
    row = np.repeat(np.arange(table.num_rows), lengths)
    # Drop items the vocab does not know (only when reusing a checkpoint's vocab), then re-sort
    # by time within each user (stable, so ties keep the warehouse's order).
    keep = item > PAD
    order = np.lexsort((time[keep], row[keep]))
    row, item, time, reward = (
        row[keep][order],
        item[keep][order],
        time[keep][order],
        reward[keep][order],
    )
    offsets = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=table.num_rows))])
    users = vocab.users.encode(table.column("user_id"))
    event_ids = None
    if "event_ids" in table.column_names:  # kept so per-event outputs can be joined back
        ids, ids_len = _flat(table, "event_ids")
        if not np.array_equal(lengths, ids_len):
            raise ValueError("event_ids must have the same length as item_ids in every row")
        event_ids = ids.cast(pa.string()).to_numpy(zero_copy_only=False)[keep][order]
    return Events(users, offsets.astype(np.int64), item, time, reward, event_ids)


def _windows(train: Split, max_len: int) -> Split:
    """Cut each train sequence, from its end backwards, into windows of <= max_len targets.

    Window k of a sequence [s, e) ends at e_k = e - k * max_len and starts at
    max(s, e_k - max_len - 1); consecutive windows share one event (the last target of the
    older window is the first input of the newer one), so every target is predicted exactly once
    and nothing is thrown away for long users.
    """
    n = np.maximum(-(-(train.ends - train.starts - 1) // max_len), 0)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    ends = np.repeat(train.ends, n) - k * max_len
    return Split(np.maximum(np.repeat(train.starts, n), ends - max_len - 1), ends)


def _leave_one_out(ev: Events) -> tuple[Split, Split, Split]:
    s, n = ev.offsets[:-1], ev.lengths
    held = n >= 3  # users with fewer than 3 events are train only
    train = Split(s, np.where(held, s + n - 2, s + n))
    valid = Split(s[held], (s + n - 2)[held])
    test = Split(s[held], (s + n - 1)[held])
    return train, valid, test


def _temporal(ev: Events, valid_start: float, test_start: float) -> tuple[Split, Split, Split]:
    s = ev.offsets[:-1]
    row = ev.row_of_event
    before = np.bincount(row[ev.timestamps < valid_start], minlength=len(s))
    train = Split(s, s + before)  # events are time-sorted, so "before" is a prefix
    pos = np.arange(len(ev.items)) - s[row]
    has_history = pos >= 1  # a target needs at least one earlier event to condition on
    in_valid = (ev.timestamps >= valid_start) & (ev.timestamps < test_start) & has_history
    in_test = (ev.timestamps >= test_start) & has_history
    valid = Split(s[row[in_valid]], np.flatnonzero(in_valid))
    test = Split(s[row[in_test]], np.flatnonzero(in_test))
    return train, valid, test


def build_dataset(
    table: pa.Table,
    max_len: int = 200,
    split: SplitKind = "leave_one_out",
    valid_start: float | datetime | None = None,
    test_start: float | datetime | None = None,
    vocab: Vocab | None = None,
) -> SequenceData:
    """Dense ids, splits and batching for a `user_sequences` table.

    leave_one_out: per user, test = last event, valid = the one before, train = the rest (users
    with < 3 events are train only). temporal: train targets are events before `valid_start`,
    valid targets in [valid_start, test_start), test targets >= test_start; every target is
    predicted from the user's full history before it. Pass `vocab` to reuse a checkpoint's ids
    (unknown items are then dropped).
    """
    if vocab is None:
        items, _ = _flat(table, "item_ids")
        vocab = Vocab(IdMap.fit(items), IdMap.fit(table.column("user_id")))
    ev = _events(table, vocab)
    if split == "leave_one_out":
        train, valid, test = _leave_one_out(ev)
    elif split == "temporal":
        vs, ts = _epoch_seconds(valid_start), _epoch_seconds(test_start)
        if vs is None or ts is None or vs > ts:
            raise ValueError("temporal split needs valid_start <= test_start")
        train, valid, test = _temporal(ev, vs, ts)
    else:
        raise ValueError(f"unknown split {split!r}")
    return SequenceData(vocab, ev, train, valid, test, max_len, split, _windows(train, max_len))


def sequences_from_interactions(table: pa.Table) -> pa.Table:
    """Interactions (user_id, item_id, timestamp, rating) -> the `user_sequences` contract.

    The warehouse builds this table in production; this is the same thing for experiments and
    tests: ordered by timestamp, ties broken by the original row order.
    """
    users = IdMap.fit(table.column("user_id"))
    user = users.encode(table.column("user_id"))
    ts = table.column("timestamp").to_numpy().astype(np.float64)
    order = np.lexsort((np.arange(len(ts)), ts, user))
    counts = np.bincount(user, minlength=len(users) + 1)[1:]
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))

    def as_list(values: pa.Array) -> pa.ListArray:
        return pa.ListArray.from_arrays(offsets, values.take(pa.array(order)))

    item = table.column("item_id").combine_chunks().cast(pa.string())
    rating = table.column("rating").combine_chunks().cast(pa.float64())
    return pa.table(
        {
            "user_id": pa.array(users.ids, pa.string()),
            "item_ids": as_list(item),
            "timestamps": as_list(pa.array(ts)),
            "rewards": as_list(rating),
            "length": pa.array(counts.astype(np.int64)),
        }
    )


def read_user_sequences(path: str | Path) -> pa.Table:
    """A `user_sequences` Parquet file, or a RecBole `.inter` file (e.g. ml-100k.inter)."""
    path = Path(path)
    if path.suffix == ".parquet" or path.is_dir():
        import pyarrow.parquet as pq

        return pq.read_table(path)
    if path.suffix == ".inter":
        # The MovieLens loader already parses RecBole files into the raw-log contract.
        from watchlogs.movielens import load_movielens

        events = load_movielens(path)
        seconds = pc.divide(events["event_ts"].cast(pa.int64()), 1e6)
        return sequences_from_interactions(
            pa.table(
                {
                    "user_id": events["user_id"],
                    "item_id": events["item_id"],
                    "timestamp": seconds,
                    "rating": events["rating"],
                }
            )
        )
    raise ValueError(f"expected a .parquet or RecBole .inter file, got {path}")
