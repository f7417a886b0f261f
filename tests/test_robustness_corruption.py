"""Reward corruption: only rewards change, at the stated level, seeded; the reward features are
re-derived from the corrupted reward as the dbt marts derive them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.toy import toy_sequences
from training.core.data import build_dataset
from training.robustness.condition import with_event_rewards
from training.robustness.corruption import corrupt_rewards, habit_events
from training.robustness.rewardstats import daily_reward_stats
from training.robustness.settings import RobustnessSettings


def test_only_rewards_change_and_sequences_stay_byte_identical():
    data = build_dataset(toy_sequences(n_users=16, length=10), max_len=8)
    logged = data.events.rewards.copy()
    habit = np.arange(len(logged)) % 3 == 0
    for kind, level in (("noise", 1.0), ("replace", 0.5), ("habit", 2.0)):
        corrupted = with_event_rewards(data, corrupt_rewards(logged, kind, level, 0, habit))
        for name in ("users", "offsets", "items", "timestamps"):
            assert getattr(corrupted.events, name).tobytes() == getattr(data.events, name).tobytes()
        rows = np.arange(len(data.windows))
        a, b = data.train_batch(rows), corrupted.train_batch(rows)
        assert all(
            a[k].numpy().tobytes() == b[k].numpy().tobytes() for k in ("item_ids", "timestamps")
        )
        assert not np.array_equal(corrupted.events.rewards, logged)
    assert data.events.rewards.tobytes() == logged.tobytes()  # the logged data is untouched


def test_noise_has_the_stated_std_is_zero_mean_clipped_seeded_and_keeps_nulls():
    r = np.full(200_000, 3.0, np.float32)
    r[::1000] = np.nan
    out = corrupt_rewards(r, "noise", 0.3, seed=7)
    noise = (out - r)[np.isfinite(r)]
    assert noise.std() == pytest.approx(0.3, rel=0.02) and abs(noise.mean()) < 0.005
    assert np.isnan(out[::1000]).all() and np.nanmin(out) >= 1 and np.nanmax(out) <= 5
    assert np.array_equal(out, corrupt_rewards(r, "noise", 0.3, seed=7), equal_nan=True)
    assert not np.array_equal(out, corrupt_rewards(r, "noise", 0.3, seed=8), equal_nan=True)
    wide = corrupt_rewards(r, "noise", 3.0, seed=7)  # common random numbers: same direction
    assert np.array_equal(np.sign(wide - r), np.sign(out - r), equal_nan=True)
    assert np.array_equal(corrupt_rewards(r, "noise", 0.0), r, equal_nan=True)


def test_replace_changes_the_stated_share():
    r = np.random.default_rng(0).integers(1, 6, 100_000).astype(np.float32)
    out = corrupt_rewards(r, "replace", 0.4, seed=1)
    assert (out != r).mean() == pytest.approx(0.4, abs=0.01)
    assert out.min() >= 1 and out.max() <= 5


def test_habit_bias_inflates_only_habit_events_by_the_level():
    r = np.random.default_rng(0).integers(1, 6, 10_000).astype(np.float32)
    habit = np.random.default_rng(1).random(10_000) < 0.2
    out = corrupt_rewards(r, "habit", 1.5, habit=habit)
    assert np.array_equal(out[~habit], r[~habit])
    assert np.allclose(out[habit] - r[habit], np.minimum(1.5, 5 - r[habit]))
    with pytest.raises(ValueError, match="habit flag"):
        corrupt_rewards(r, "habit", 1.0)


def test_habit_events_are_autoplay_and_trending_titles():
    autoplay = np.array([True, False, False, False, False])
    popularity = np.array([0.0, 50.0, 1.0, np.nan, 2.0])
    assert habit_events(autoplay, popularity, 0.0).tolist() == autoplay.tolist()
    assert habit_events(autoplay, popularity, 0.2).tolist() == [True, True, False, False, False]


def test_bad_kinds_and_levels_are_refused():
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt_rewards(np.ones(3), "typo", 1.0)
    with pytest.raises(ValueError, match=">= 0"):
        corrupt_rewards(np.ones(3), "noise", -1.0)
    with pytest.raises(ValueError, match="no levels"):
        RobustnessSettings(kinds=("noise", "replace"), levels={"noise": (0.0, 1.0)})
    s = RobustnessSettings(levels={"noise": (0.0, 1.0), "habit": (0.0, 2.0, 1.0)})
    assert s.conditions() == [("clean", 0.0), ("noise", 1.0), ("habit", 1.0), ("habit", 2.0)]


def test_daily_reward_stats_match_the_marts_definition():
    """Brute force of transforms/macros/stats.sql: per entity and day with events, cumulative
    mean and sample std, and the mean over the last 7 calendar days, stamped at day end."""
    rng = np.random.default_rng(3)
    n = 400
    ent = rng.integers(1, 6, n)
    ts = 1_700_000_000 + rng.integers(0, 30 * 86_400, n).astype(np.float64)
    r = rng.integers(1, 6, n).astype(np.float64)
    r[rng.random(n) < 0.1] = np.nan
    got_e, got_stamp, got = daily_reward_stats(ent, ts, r)
    df = pd.DataFrame({"e": ent, "day": np.floor(ts / 86_400).astype(int), "r": r})
    for e, stamp, row in zip(got_e, got_stamp, got, strict=True):
        day_of = stamp / 86_400 - 1  # stamped at the end of the day
        assert day_of in set(df.day[df.e == e])
        mine = df[(df.e == e) & (df.day <= day_of)]["r"].dropna()
        week = df[(df.e == e) & (df.day <= day_of) & (df.day > day_of - 7)]["r"].dropna()
        assert np.isclose(row[0], mine.mean(), equal_nan=True)
        assert np.isclose(row[1], mine.std(ddof=1) if len(mine) > 1 else np.nan, equal_nan=True)
        assert np.isclose(row[2], week.mean() if len(week) else np.nan, equal_nan=True)
    assert len(got_e) == len(df.groupby(["e", "day"]))
