"""What every level of the study shares, loaded once: the pretrained policy and the sequences
(identical at every level), Feast's point-in-time features, the frozen states of the reward
models' training, validation and test events, the user halves, the habit flags, and the
independent judge's own encoder. Nothing here reads the simulator's oracle."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.layout import DataLayout
from common.warehouse import connect_read_only, training_inputs
from training.core.config import TrainConfig
from training.core.data import SequenceData, build_dataset
from training.models import SequenceEncoder
from training.posttrain.inputs import PosttrainInputs, load_posttrain_inputs
from training.pretrain.loop import pretrain
from training.reward.features import FeatureTables, day_stamps, fetch_feature_tables
from training.reward.train import (
    JUDGE_HALF,
    Targets,
    dense_user_halves,
    split_targets,
    train_targets,
    user_half,
)
from training.robustness.corruption import habit_events
from training.robustness.settings import RobustnessSettings

Log = Callable[[str], None]


@dataclass
class EncodedEvents:
    """The rewarded train / valid / test events as one frozen encoder sees them."""

    train: Targets
    valid: Targets
    test: Targets


@dataclass
class StudyWorld:
    inputs: PosttrainInputs  # the pretrained policy and the logged (clean) sequences
    tables: FeatureTables  # as Feast serves them (clean rewards)
    policy_events: EncodedEvents  # states of the pretrained policy: trainer's and judge's input
    judge_encoder: SequenceEncoder  # the independent judge's own encoder (its half only)
    judge_events: EncodedEvents  # states of that encoder, its half of the users only
    user_half: np.ndarray  # [n_users + 1] half of every dense user id (-1: padding)
    habit: np.ndarray  # [E] habit flag of every event (corruption.habit_events)
    seconds: dict[str, float]

    @property
    def data(self) -> SequenceData:
        return self.inputs.data

    def event_half(self) -> np.ndarray:
        """[E] the half of every event's user."""
        ev = self.data.events
        return self.user_half[ev.users[ev.row_of_event]]


def encode_events(
    encoder: SequenceEncoder, data: SequenceData, s: RobustnessSettings, half: np.ndarray | None
) -> EncodedEvents:
    """Frozen states of the rewarded events (reward stage's samples); only users of `half`
    when given ([n_users + 1] mask by dense user id)."""
    out = [
        train_targets(encoder, data, s.max_train_events, s.seed),
        split_targets(encoder, data, data.valid, None, s.max_valid_events, s.seed),
        split_targets(encoder, data, data.test, None, s.max_test_events, s.seed),
    ]
    if half is not None:
        out = [t.take(half[t.users]) for t in out]
    return EncodedEvents(*out)


def autoplay_flags(root: Path, data: SequenceData) -> np.ndarray:
    """[E] the log's autoplay flag of every event, by event id (False where the source has none,
    e.g. MovieLens)."""
    ids = data.events.event_ids
    if ids is None:
        return np.zeros(len(data.events.items), bool)
    with connect_read_only(DataLayout(root).warehouse) as con:
        logged = con.sql("select event_id, autoplay from marts.fct_reward_events").to_arrow_table()
    at = pc.index_in(pa.array(np.asarray(ids, dtype=object), pa.string()), logged["event_id"])
    flags = pc.fill_null(pc.take(logged["autoplay"], at), False)
    return flags.to_numpy(zero_copy_only=False).astype(bool)


def half_data(root: Path, inputs: PosttrainInputs, keep_half: int) -> SequenceData:
    """The temporal-split sequences of one half of the users, in the policy's ids."""
    with connect_read_only(DataLayout(root).warehouse) as con:
        sequences, valid_start, test_start = training_inputs(con)
    halves = user_half(sequences["user_id"].to_pylist())
    return build_dataset(
        sequences.filter(pa.array(halves == keep_half)), max_len=inputs.policy.cfg.max_len,
        split="temporal", valid_start=valid_start, test_start=test_start,
        vocab=inputs.data.vocab,
    )  # fmt: skip


def train_judge_encoder(
    root: Path, inputs: PosttrainInputs, s: RobustnessSettings, log: Log
) -> SequenceEncoder:
    """The independent judge's own sequence encoder: the pretrained policy's architecture and
    recipe, trained from scratch on the judge's half of the users only."""
    recipe = TrainConfig.from_dict(inputs.meta.get("train_config", {}))
    cfg = dataclasses.replace(recipe, epochs=s.judge_encoder_epochs, seed=s.seed + 1,
                              num_threads=s.num_threads, ema_decay=0.0)  # fmt: skip
    data = half_data(root, inputs, JUDGE_HALF)
    return pretrain(data, inputs.policy.cfg, cfg, log=log).model.eval()


def load_world(root: Path, s: RobustnessSettings, log: Log = print) -> StudyWorld:
    """Everything the levels share (module docstring); the oracle is not read."""
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    inputs = load_posttrain_inputs(root)
    data, vocab = inputs.data, inputs.data.vocab
    ts = data.events.timestamps
    tables, _ = fetch_feature_tables(vocab, day_stamps(float(ts.min()), float(ts.max())), root,
                                     s.feast_check_rows, s.seed)  # fmt: skip
    halves = dense_user_halves(vocab)
    popularity = tables.item_feature("item_popularity_7d", data.events.items, ts)
    habit = habit_events(autoplay_flags(root, data), popularity, s.trending_share)
    seconds["load"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    policy_events = encode_events(inputs.policy, data, s, None)
    seconds["encode"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    judge_encoder = train_judge_encoder(root, inputs, s, log)
    judge_events = encode_events(judge_encoder, data, s, halves == JUDGE_HALF)
    seconds["judge_encoder"] = time.perf_counter() - t0
    log(f"world: {len(data.events.items):,} events, {habit.mean():.1%} habit, "
        f"{len(policy_events.train):,} reward-model training events")  # fmt: skip
    return StudyWorld(inputs, tables, policy_events, judge_encoder, judge_events, halves, habit,
                      seconds)  # fmt: skip
