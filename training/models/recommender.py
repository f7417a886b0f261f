"""A policy's top-k titles after users' histories: the one ranking path of serving.

The MLflow model (`mlflow_model.py`) wraps `Recommender`, and batch recommendations and the
recommend command call that model, so all three give the same titles for the same history.
As in evaluation (docs/design.md), every title of the history is excluded, not only those in the
model's window of the newest `max_len` events. Titles the policy's vocabulary lacks are ignored
(returned in `ignored_item_ids` and logged): a catalogue grows between trainings, and one new
title must not fail a request. A history with no known title gets the popularity ranking of the
data the policy was logged with, and says so (`source`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from training.core.config import ModelConfig
from training.core.data import PAD, IdMap
from training.core.scoring import last_state_scores, mask_seen
from training.models import SequenceEncoder

log = logging.getLogger(__name__)
POLICY, POPULARITY = "policy", "popularity"


class RequestError(ValueError):
    """A malformed request; the message names the request and what is wrong."""


@dataclass(frozen=True)
class Request:
    """One user's history (any order; sorted by time here), when the titles are asked for, and
    titles to leave out besides the history's."""

    item_ids: Sequence[str]
    timestamps: Sequence[float]  # epoch seconds
    request_ts: float  # epoch seconds
    exclude: Sequence[str] = ()


@dataclass
class Recommendation:
    item_ids: list[str]
    scores: list[float]  # cosine of state and title (policy) or share of events (popularity)
    source: str  # POLICY or POPULARITY
    ignored_item_ids: list[str] = field(default_factory=list)


def check_requests(requests: Sequence[Request], k: int) -> None:
    """Raise RequestError naming the first malformed request (or k)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise RequestError(f"k must be a positive integer, got {k!r}")
    for i, r in enumerate(requests):
        if len(r.item_ids) != len(r.timestamps):
            raise RequestError(
                f"request {i}: item_ids has {len(r.item_ids)} entries but timestamps "
                f"{len(r.timestamps)}; they are parallel lists"
            )
        if not all(isinstance(t, str) for t in chain(r.item_ids, r.exclude)):
            raise RequestError(f"request {i}: item_ids and exclude must be title id strings")
        times = np.asarray(r.timestamps, dtype=np.float64)
        if not np.isfinite(times).all() or not np.isfinite(r.request_ts):
            raise RequestError(f"request {i}: timestamps and request_ts must be finite numbers")


class Recommender:
    """A policy in eval mode, its title vocabulary and the popularity fallback."""

    def __init__(self, policy: SequenceEncoder, items: IdMap, popularity: np.ndarray) -> None:
        if len(popularity) != len(items) + 1:
            raise ValueError(f"popularity has {len(popularity)} entries, expected {len(items) + 1}")
        self.policy, self.items = policy.eval(), items
        self.popularity = torch.as_tensor(np.asarray(popularity, dtype=np.float64))

    def save(self, path: Path) -> Path:
        """Weights, configs, vocabulary and popularity in one file (the MLflow artifact)."""
        torch.save(
            {
                "model": self.policy.state_dict(),
                "model_config": self.policy.cfg.to_dict(),
                "n_items": self.policy.n_items,
                "items": self.items.ids,
                "popularity": self.popularity,
            },
            path,
        )
        return path

    @classmethod
    def load(cls, path: Path | str) -> Recommender:
        ck = torch.load(path, weights_only=True)
        policy = SequenceEncoder(ck["n_items"], ModelConfig.from_dict(ck["model_config"]))
        policy.load_state_dict(ck["model"])
        return cls(policy, IdMap(list(ck["items"])), ck["popularity"].numpy())

    @torch.no_grad()
    def recommend(
        self, requests: Sequence[Request], k: int = 10, batch_size: int = 256
    ) -> list[Recommendation]:
        """The top-k unseen titles of each request, best first."""
        check_requests(requests, k)
        out: list[Recommendation] = []
        for lo in range(0, len(requests), batch_size):
            out.extend(self._batch(requests[lo : lo + batch_size], k))
        return out

    def _encode(self, ids: list[str]) -> np.ndarray:
        return self.items.encode(pa.array(ids, pa.string())) if ids else np.zeros(0, np.int64)

    def _batch(self, requests: Sequence[Request], k: int) -> list[Recommendation]:
        n = len(requests)
        lengths = np.array([len(r.item_ids) for r in requests], dtype=np.int64)
        raw = [str(i) for r in requests for i in r.item_ids]
        items = self._encode(raw)
        ts = np.fromiter(chain.from_iterable(r.timestamps for r in requests), np.float64)
        row = np.repeat(np.arange(n), lengths)
        ignored: list[list[str]] = [[] for _ in range(n)]
        for j in np.flatnonzero(items == PAD):
            ignored[row[j]].append(raw[j])
        if any(ignored):
            log.warning(
                "ignored %d title id(s) the policy does not know, e.g. %s",
                sum(map(len, ignored)),
                next(g for g in ignored if g)[:3],
            )
        # Known titles only, sorted by (request, time); the sort is stable, so a history's
        # order among equal times is kept, as the warehouse orders ties.
        order = np.lexsort((ts, row))
        items, ts, row = items[order], ts[order], row[order]
        keep = items != PAD
        items, ts, row = items[keep], ts[keep], row[keep]
        ends = np.searchsorted(row, np.arange(n), side="right")
        starts = np.searchsorted(row, np.arange(n), side="left")
        scores = self._scores(items, ts, starts, ends, [r.request_ts for r in requests])
        excluded = [self._encode([str(i) for i in r.exclude]) for r in requests]
        seen_rows = np.concatenate([row, np.repeat(np.arange(n), [len(e) for e in excluded])])
        seen_items = np.concatenate([items, *excluded])
        mask_seen(scores, torch.from_numpy(seen_rows), torch.from_numpy(seen_items))
        val, top = scores.topk(min(k, scores.shape[1]), dim=1)
        recs = []
        for i in range(n):
            ok = torch.isfinite(val[i])
            recs.append(
                Recommendation(
                    item_ids=[self.items.ids[t - 1] for t in top[i][ok].tolist()],
                    scores=val[i][ok].tolist(),
                    source=POLICY if ends[i] > starts[i] else POPULARITY,
                    ignored_item_ids=ignored[i],
                )
            )
        return recs

    def _scores(
        self,
        items: np.ndarray,
        ts: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        request_ts: list[float],
    ) -> torch.Tensor:
        """[B, n_items + 1]: the policy's cosine scores after each history's newest `max_len`
        known titles; popularity (share of events) for a request with none."""
        n = len(starts)
        scores = self.popularity.to(torch.float32)[None].repeat(n, 1)
        rows = np.flatnonzero(ends > starts)
        if len(rows) == 0:
            return scores
        s, e = starts[rows], ends[rows]
        width = int(np.minimum(e - s, self.policy.cfg.max_len).max())
        idx = e[:, None] - width + np.arange(width)[None, :]
        idx = np.where(idx >= s[:, None], idx, -1)  # right-aligned, -1 = padding
        hist = np.where(idx >= 0, items[np.maximum(idx, 0)], PAD)
        times = np.where(idx >= 0, ts[np.maximum(idx, 0)], 0.0)
        # Decision times: each position's next event's, and the request's at the newest.
        decided = np.zeros_like(times)
        decided[:, :-1] = np.where(idx[:, :-1] >= 0, times[:, 1:], 0.0)
        decided[:, -1] = np.asarray(request_ts, dtype=np.float64)[rows]
        scores[torch.from_numpy(rows)] = last_state_scores(
            self.policy,
            torch.from_numpy(hist),
            torch.from_numpy(times),
            torch.from_numpy(decided),
        )
        return scores


def popularity_of(item_ids: np.ndarray, n_items: int) -> np.ndarray:
    """[n_items + 1] each title's share of the events (dense ids; padding 0)."""
    counts = np.bincount(np.asarray(item_ids, dtype=np.int64), minlength=n_items + 1)
    counts = counts.astype(np.float64)
    counts[PAD] = 0.0
    return counts / max(counts.sum(), 1.0)
