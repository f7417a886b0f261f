"""The synthetic watch world: contract, determinism, and the habit/hype it must contain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pytest

from watchlogs import Oracle, SimulatorConfig, simulate
from watchlogs.behaviour import AUTOPLAY_PROMOTED, CHOSEN
from watchlogs.schema import CONTRACT_COLUMNS, RAW_WATCH_LOG_SCHEMA, conform
from watchlogs.summary import summarise

CFG = SimulatorConfig.tiny()


@pytest.fixture(scope="module")
def result():
    return simulate(CFG)


@pytest.fixture(scope="module")
def frame(result) -> pd.DataFrame:
    df = result.events.to_pandas()
    df["s"] = result.diagnostics.satisfaction
    df["frac"] = df["watch_seconds"] / df["item_duration_seconds"]
    df["session"] = result.diagnostics.session_index
    return df


def test_same_seed_same_world_and_logs():
    a, b = simulate(CFG), simulate(CFG)
    assert a.events.equals(b.events)
    for name in ("user_ids", "item_ids", "user_factors", "item_factors", "user_bias", "item_bias"):
        np.testing.assert_array_equal(getattr(a.oracle, name), getattr(b.oracle, name))
    np.testing.assert_array_equal(a.diagnostics.choice_reason, b.diagnostics.choice_reason)


def test_different_seed_differs():
    a, b = simulate(CFG), simulate(SimulatorConfig.tiny(seed=1))
    assert not a.events["item_id"].equals(b.events["item_id"])
    assert not np.allclose(a.oracle.item_factors, b.oracle.item_factors)


def test_events_conform_exactly_to_the_contract(result):
    events = result.events
    assert tuple(events.column_names) == CONTRACT_COLUMNS  # no truth leaks as extra columns
    for field in RAW_WATCH_LOG_SCHEMA:
        assert events.schema.field(field.name).type == field.type, field.name
    assert conform(events).equals(events)
    assert events.num_rows == CFG.n_events
    for name in ("event_id", "user_id", "item_id", "event_ts", "watch_seconds", "autoplay"):
        assert events[name].null_count == 0, name


def test_ids_are_unique_and_well_formed(result, frame):
    assert frame["event_id"].is_unique
    assert frame["event_id"].str.fullmatch(r"sim-\d{9}").all()
    assert frame["user_id"].str.fullmatch(r"u\d{6}").all()
    assert frame["item_id"].str.fullmatch(r"i\d{5}").all()
    assert set(frame["user_id"]) <= set(result.oracle.user_ids)
    assert set(frame["item_id"]) <= set(result.oracle.item_ids)


def test_timestamps_inside_the_window_and_sorted(result):
    micros = result.events["event_ts"].cast("int64").to_numpy()
    start = CFG.start_us
    assert micros.min() >= start
    assert micros.max() < start + CFG.n_days * 86_400 * 1_000_000
    assert (np.diff(micros) >= 0).all()
    assert pc.min(result.events["event_ts"]).as_py().isoformat().startswith("2025-01-")


def test_watch_seconds_and_durations_are_plausible(frame):
    assert (frame["watch_seconds"] >= 0).all()
    assert (frame["watch_seconds"] <= frame["item_duration_seconds"]).all()
    minutes = frame["item_duration_seconds"] / 60
    assert minutes.between(20, 150).all()
    assert (minutes < 61).any() and (minutes > 79).any()  # episodes and films


def test_ratings_are_sparse_in_range_and_noisy_around_satisfaction(frame):
    rated = frame[frame["rating"].notna()]
    assert 0.01 < len(rated) / len(frame) < 0.1
    assert rated["rating"].isin([1, 2, 3, 4, 5]).all()
    assert np.corrcoef(rated["rating"], rated["s"])[0, 1] > 0.5
    assert (rated["rating"] != np.rint(rated["s"])).any()  # noisy, not the truth itself


def test_sessions_have_realistic_gaps_and_activity_is_heavy_tailed(frame):
    df = frame.sort_values(["user_id", "event_ts"], kind="stable")
    start = df["event_ts"].astype("int64") / 1e6
    prev_end = (start + df["watch_seconds"]).groupby(df["user_id"]).shift()
    idle = (start - prev_end).dropna()
    same_session = (df["session"] == df.groupby("user_id")["session"].shift()).loc[idle.index]
    within, between = idle[same_session], idle[~same_session]
    assert within.between(3 - 1e-3, CFG.browse_gap_max_seconds + 1e-3).all()  # seconds-minutes
    assert (between >= CFG.min_session_gap_seconds - 1e-3).all()
    assert between.median() > 3 * 3600  # sessions hours to days apart
    per_user = df.groupby("user_id").size()
    assert per_user.max() > 3 * per_user.median()


def test_habit_and_autoplay_are_a_large_share(result, frame):
    diag = result.diagnostics
    np.testing.assert_array_equal(frame["autoplay"].to_numpy(), diag.is_autoplay)
    assert diag.is_autoplay.mean() > 0.1
    assert diag.is_series_continuation.mean() > 0.2
    # Autoplay never opens a session.
    opens = np.r_[True, diag.session_index[1:] != diag.session_index[:-1]]
    first_of_session = (
        frame.assign(order=np.arange(len(frame)))
        .sort_values(["session", "event_ts"], kind="stable")
        .groupby("session")["order"]
        .first()
    )
    assert not diag.is_autoplay[first_of_session.to_numpy()].any()
    assert opens.any()


def test_logged_choices_fall_well_short_of_the_oracle(result):
    summary = summarise(result, k=10)
    assert 0.05 < summary["normalised_s@10"] < 0.7
    # Promoted autoplay is hype, not taste: worse than deliberate choices.
    promoted = summary["normalised_s@10|autoplay_promoted"]
    assert promoted < summary["normalised_s@10|chosen"] - 0.2


def test_popularity_follows_satisfaction_only_partly(result, frame):
    counts = frame["item_id"].value_counts()
    mean_s = pd.Series(
        result.oracle.satisfaction_matrix(result.oracle.user_ids).mean(axis=0),
        index=result.oracle.item_ids,
    )
    joined = pd.concat([counts.rename("n"), mean_s.rename("s")], axis=1).fillna(0)
    rho = joined["n"].rank().corr(joined["s"].rank())
    assert 0.0 < rho < 0.8
    # Long tail: the top tenth of titles takes over twice its uniform share, the bottom half
    # (never-watched titles included) well under half.
    ranked = joined["n"].sort_values(ascending=False)
    assert ranked.iloc[: len(ranked) // 10].sum() / len(frame) > 0.2
    assert ranked.iloc[len(ranked) // 2 :].sum() / len(frame) < 0.3


def test_watch_time_tracks_satisfaction_but_autoplay_inflates_it(frame):
    chosen = frame[~frame["autoplay"]]
    assert np.corrcoef(chosen["s"], chosen["frac"])[0, 1] > 0.3
    slope, intercept = np.polyfit(chosen["s"], chosen["frac"], 1)
    auto = frame[frame["autoplay"]]
    residual = auto["frac"] - (slope * auto["s"] + intercept)
    assert residual.mean() > 0.05


def test_diagnostic_satisfaction_is_the_oracles(result, frame):
    s = result.oracle.satisfaction(frame["user_id"].to_numpy(), frame["item_id"].to_numpy())
    np.testing.assert_allclose(s, frame["s"], rtol=1e-5)
    assert 1.0 <= s.min() and s.max() <= 5.0


def test_oracle_round_trip(result, tmp_path):
    result.oracle.save(tmp_path / "oracle")
    loaded = Oracle.load(tmp_path / "oracle")
    for name in ("user_ids", "item_ids", "user_factors", "item_factors", "user_bias", "item_bias"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(result.oracle, name))
    assert loaded.config["n_users"] == CFG.n_users
    users = result.oracle.user_ids[:5]
    np.testing.assert_array_equal(
        loaded.satisfaction_matrix(users), result.oracle.satisfaction_matrix(users)
    )


def test_normalised_slate_value_bounds(result):
    oracle, k = result.oracle, 5
    users = oracle.user_ids
    matrix = oracle.satisfaction_matrix(users)
    best = [list(oracle.item_ids[np.argsort(-row)[:k]]) for row in matrix]
    worst = [list(oracle.item_ids[np.argsort(row)[:k]]) for row in matrix]
    rng = np.random.default_rng(0)
    random = [list(rng.choice(oracle.item_ids, size=k, replace=False)) for _ in users]
    assert oracle.normalised_slate_value(users, best, k) == pytest.approx(1.0)
    assert abs(oracle.normalised_slate_value(users, random, k)) < 0.15
    assert oracle.normalised_slate_value(users, worst, k) < -0.5
    values = oracle.normalised_slate_values(users, best, k)
    np.testing.assert_allclose(values, 1.0)


def test_slate_values_respect_exclusions(result):
    oracle = result.oracle
    user = oracle.user_ids[0]
    row = oracle.satisfaction_matrix([user])[0]
    top = oracle.item_ids[np.argmax(row)]
    plain = oracle.best_slate_value([user], 1)[0]
    assert plain == pytest.approx(row.max())
    excluded = oracle.best_slate_value([user], 1, exclude={user: {top}})[0]
    assert excluded < plain
    rand = oracle.random_slate_value([user], 3, exclude={user: {top}})[0]
    assert rand == pytest.approx(np.delete(row, np.argmax(row)).mean())
    with pytest.raises(KeyError):
        oracle.satisfaction(["nobody"], [top])


def test_choice_reasons_cover_choices_and_promotions(result):
    reasons = np.bincount(result.diagnostics.choice_reason, minlength=4)
    assert reasons[CHOSEN] > 0.3 * reasons.sum()
    assert reasons[AUTOPLAY_PROMOTED] > 0


def test_progress_is_reported_and_config_is_validated():
    messages: list[str] = []
    simulate(SimulatorConfig.tiny(n_events=600), progress=messages.append)
    assert messages and all(isinstance(m, str) for m in messages)
    with pytest.raises(ValueError):
        SimulatorConfig.tiny(n_events=10**9)
    with pytest.raises(ValueError):
        SimulatorConfig.tiny(new_release_share=1.0)


def test_titles_are_watched_after_release_and_buzz_fades(result):
    micros = result.events["event_ts"].cast("int64").to_numpy()
    day = (micros - CFG.start_us) // (86_400 * 1_000_000)
    assert (day >= result.diagnostics.release_day).all()

    # New releases draw most of their viewing in their first weeks (rising then decaying buzz).
    cfg = SimulatorConfig.tiny(n_events=12_000, n_users=120, n_days=90, seed=3)
    world = simulate(cfg)
    released = world.diagnostics.release_day
    micros = world.events["event_ts"].cast("int64").to_numpy()
    age = (micros - cfg.start_us) // (86_400 * 1_000_000) - released
    new = (released >= 0) & (released < 30)  # at least 60 days observed after release
    early = np.mean(age[new] < 14)
    assert early > 1.5 * (14 / 60)  # 1.5x the share of uniform viewing over >= 60 days
