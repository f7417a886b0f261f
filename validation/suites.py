"""One expectation suite per stage, as code; every limit comes from `thresholds`.

Each expectation's `meta` says what a failure means: `reason` (the quarantine reason, the same
words dbt uses where dbt checks the same rule) and `level`: "file" for rules about the table as a
whole (columns, types, emptiness: a delivery breaking one is rejected whole) or "row" for rules
on individual rows (the failing rows are named and quarantined).

Rules GX cannot state on raw columns alone use derived columns that `views` adds before
validation (e.g. `watch_fraction`, `hours_ahead_of_now`, `item_id_in_catalogue`).
"""

from __future__ import annotations

from collections.abc import Callable

import great_expectations as gx
import great_expectations.expectations as gxe

from validation.thresholds import Thresholds, default_thresholds
from watchlogs.schema import CONTRACT_COLUMNS

# Accepted pandas dtypes of each raw contract column, as GX names them (views.raw_view makes
# strings, ints and bools pandas' nullable dtypes and timestamps naive UTC): anything conform()
# casts to the contract type without changing its meaning.
_INTS = ["Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype", "UInt8Dtype"]
_TIMESTAMPS = ["datetime64[us]", "datetime64[ns]", "datetime64[ms]", "datetime64[s]"]
RAW_TYPES: dict[str, list[str]] = {
    "event_id": ["StringDtype"],
    "user_id": ["StringDtype"],
    "item_id": ["StringDtype"],
    "event_ts": _TIMESTAMPS,
    "watch_seconds": ["float64", "float32", *_INTS],
    "item_duration_seconds": ["float64", "float32", *_INTS],
    "rating": _INTS,
    "autoplay": ["BooleanDtype"],
}


def _file(reason: str) -> dict[str, str]:
    return {"reason": reason, "level": "file"}


def _row(reason: str) -> dict[str, str]:
    return {"reason": reason, "level": "row"}


def _not_null(columns: list[str] | tuple[str, ...], prefix: str = "missing_") -> list:
    return [
        gxe.ExpectColumnValuesToNotBeNull(
            column=c, meta=_row(f"{prefix}{c}"), description=f"`{c}` is never null"
        )
        for c in columns
    ]


def _non_empty() -> gxe.ExpectTableRowCountToBeBetween:
    return gxe.ExpectTableRowCountToBeBetween(
        min_value=1, meta=_file("empty_table"), description="at least one row"
    )


def _between(column: str, lo: float | None, hi: float | None, reason: str, **kw) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeBetween(
        column=column, min_value=lo, max_value=hi, meta=_row(reason), **kw
    )


def _is_true(column: str, reason: str, description: str) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeInSet(
        column=column, value_set=[True], meta=_row(reason), description=description
    )


def _watch_rules(t: Thresholds) -> list:
    return [
        _between("watch_seconds", 0, None, "negative_watch_seconds"),
        _between("item_duration_seconds", 0, None, "non_positive_duration", strict_min=True),
        _between(
            "watch_fraction",
            None,  # negative watch time is its own rule
            t.watch_seconds_slack,
            "watch_exceeds_duration",
            description=f"watch_seconds / item_duration_seconds <= {t.watch_seconds_slack}",
        ),
        _between("rating", t.rating_min, t.rating_max, "rating_out_of_range"),
        _between(
            "hours_ahead_of_now",
            None,
            t.future_tolerance_hours,
            "future_event_ts",
            description=f"event_ts at most {t.future_tolerance_hours:g} h after validation time",
        ),
    ]


def raw_suite(t: Thresholds) -> gx.ExpectationSuite:
    """The raw watch-log contract (shared/design.md), for raw partitions and landing deliveries."""
    expectations = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(CONTRACT_COLUMNS),
            exact_match=False,
            meta=_file("missing_contract_column"),
            description="every contract column is present (extra columns are kept)",
        ),
        _non_empty(),
        *[
            gxe.ExpectColumnValuesToBeInTypeList(
                column=c, type_list=types, meta=_file(f"wrong_type_{c}")
            )
            for c, types in RAW_TYPES.items()
        ],
        *_not_null(["event_id", "user_id", "item_id", "event_ts"]),
        gxe.ExpectColumnValuesToBeUnique(column="event_id", meta=_row("duplicate_event_id")),
        _is_true(
            "event_id_is_new",
            "duplicate_event_id",
            "the event_id is not already in the raw watch logs (from another delivery)",
        ),
        _is_true(
            "contract_floats_finite",
            "non_finite_value",
            "watch_seconds and item_duration_seconds are null or finite (no NaN, no infinity)",
        ),
        *_watch_rules(t),
        _is_true(
            "item_id_in_catalogue",
            "unknown_item_id",
            "item_id is a title of the catalogue (<data>/raw/titles.parquet)",
        ),
    ]
    return gx.ExpectationSuite(name="raw_watch_logs", expectations=expectations)


def staged_events_suite(t: Thresholds) -> gx.ExpectationSuite:
    expectations = [
        _non_empty(),
        *_not_null(["event_id", "user_id", "item_id", "event_ts", "event_date"]),
        gxe.ExpectColumnValuesToBeUnique(column="event_id", meta=_row("duplicate_event_id")),
        *_watch_rules(t),
        _is_true(
            "event_date_matches_ts", "event_date_mismatch", "event_date = UTC day of event_ts"
        ),
    ]
    return gx.ExpectationSuite(name="staged_events", expectations=expectations)


def sessions_suite(t: Thresholds) -> gx.ExpectationSuite:
    expectations = [
        _non_empty(),
        *_not_null(["session_id", "user_id", "session_start_ts", "session_end_ts"]),
        gxe.ExpectColumnValuesToBeUnique(column="session_id", meta=_row("duplicate_session_id")),
        _between("n_events", 1, None, "empty_session"),
        _between("session_span_seconds", 0, None, "negative_session_span"),
        _between("total_watch_seconds", 0, None, "negative_watch_seconds"),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="session_end_ts",
            column_B="session_start_ts",
            or_equal=True,
            meta=_row("session_ends_before_start"),
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="n_events",
            column_B="n_distinct_items",
            or_equal=True,
            meta=_row("more_items_than_events"),
        ),
    ]
    return gx.ExpectationSuite(name="sessions", expectations=expectations)


def sequences_suite(t: Thresholds) -> gx.ExpectationSuite:
    expectations = [
        _non_empty(),
        *_not_null(["user_id"]),
        gxe.ExpectColumnValuesToBeUnique(column="user_id", meta=_row("duplicate_user_id")),
        _between("sequence_length", t.min_sequence_length, None, "sequence_too_short"),
        _is_true("timestamps_ordered", "unordered_timestamps", "timestamps never decrease"),
        _is_true(
            "lists_aligned",
            "misaligned_lists",
            "item_ids, timestamps, rewards hold sequence_length elements each",
        ),
        _between("reward_min", t.reward_min, t.reward_max, "reward_out_of_range"),
        _between("reward_max", t.reward_min, t.reward_max, "reward_out_of_range"),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="last_event_ts",
            column_B="first_event_ts",
            or_equal=True,
            meta=_row("unordered_timestamps"),
        ),
    ]
    return gx.ExpectationSuite(name="sequences", expectations=expectations)


def splits_suite(t: Thresholds) -> gx.ExpectationSuite:
    expectations = [
        _non_empty(),
        gxe.ExpectColumnValuesToBeInSet(
            column="split", value_set=["train", "valid", "test"], meta=_row("unknown_split")
        ),
        gxe.ExpectColumnDistinctValuesToEqualSet(
            column="split", value_set=["train", "valid", "test"], meta=_file("empty_split")
        ),
        _is_true(
            "respects_cutoffs",
            "split_cutoff_violated",
            "train < valid_start <= valid < test_start <= test",
        ),
        _is_true("cutoffs_ordered", "cutoffs_unordered", "valid_start < test_start"),
    ]
    return gx.ExpectationSuite(name="splits", expectations=expectations)


def _feature_suite(name: str, key: str, prefix: str, t: Thresholds) -> gx.ExpectationSuite:
    counts = [f"{prefix}_n_events", f"{prefix}_n_rewarded", f"{prefix}_n_events_day"]
    expectations = [
        _non_empty(),
        *_not_null([key, "event_date", "event_timestamp"]),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=[key, "event_date"], meta=_row("duplicate_feature_row")
        ),
        *[_between(c, 0, None, "negative_count") for c in counts],
        _between(f"{prefix}_reward_mean", t.reward_min, t.reward_max, "reward_out_of_range"),
        _between(f"{prefix}_reward_mean_7d", t.reward_min, t.reward_max, "reward_out_of_range"),
        _between(f"{prefix}_reward_std", 0, None, "negative_std"),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=f"{prefix}_n_events",
            column_B=f"{prefix}_n_rewarded",
            or_equal=True,
            meta=_row("more_rewarded_than_events"),
        ),
        gxe.ExpectColumnMinToBeBetween(
            column="days_behind_last_event",
            max_value=t.feature_freshness_days,
            meta=_file("stale_features"),
            description=f"newest row within {t.feature_freshness_days:g} days of the last event",
        ),
    ]
    return gx.ExpectationSuite(name=name, expectations=expectations)


def user_features_suite(t: Thresholds) -> gx.ExpectationSuite:
    return _feature_suite("user_features", "user_id", "user", t)


def item_features_suite(t: Thresholds) -> gx.ExpectationSuite:
    return _feature_suite("item_features", "item_id", "item", t)


def reward_predictions_suite(t: Thresholds) -> gx.ExpectationSuite:
    expectations = [
        _non_empty(),
        *_not_null(["user_id", "item_id", "event_ts", "reward", "r_hat_mean", "r_hat_std"]),
        _between("reward", t.reward_min, t.reward_max, "reward_out_of_range"),
        _between("r_hat_mean", t.reward_min, t.reward_max, "prediction_out_of_range"),
        _between("r_hat_std", 0, None, "negative_std"),
        _between("user_mean", t.reward_min, t.reward_max, "baseline_out_of_range"),
        _between("item_mean", t.reward_min, t.reward_max, "baseline_out_of_range"),
        _is_true("all_finite", "non_finite_value", "every numeric column is finite"),
    ]
    return gx.ExpectationSuite(name="reward_predictions", expectations=expectations)


def advantages_suite(t: Thresholds) -> gx.ExpectationSuite:
    tol = t.state_weighted_advantage_tolerance
    expectations = [
        _non_empty(),
        *_not_null(["event_id", "advantage", "state_weighted_advantage", "v", "r_hat_mean"]),
        gxe.ExpectColumnValuesToBeUnique(column="event_id", meta=_row("duplicate_event_id")),
        _between("reward", t.reward_min, t.reward_max, "reward_out_of_range"),
        _between("r_hat_mean", t.reward_min, t.reward_max, "prediction_out_of_range"),
        _between("v", t.reward_min, t.reward_max, "value_out_of_range"),
        _between("r_hat_std", 0, None, "negative_std"),
        _between("advantage", -t.advantage_abs_max, t.advantage_abs_max, "advantage_out_of_range"),
        _between(
            "state_weighted_advantage",
            -tol,
            tol,
            "state_advantage_not_zero",
            description=f"per state, sum_a pi(a|s) A(s,a) within +-{tol:g}",
        ),
        _is_true("all_finite", "non_finite_value", "every numeric column is finite"),
    ]
    return gx.ExpectationSuite(name="advantages", expectations=expectations)


def model_metrics_suite(t: Thresholds) -> gx.ExpectationSuite:
    expectations = [
        _non_empty(),
        *_not_null(["value"], prefix="missing_"),
        _between("value", t.metric_min, t.metric_max, "metric_out_of_range"),
        _is_true("is_finite", "non_finite_metric", "every metric is finite"),
        _between(
            "margin_over_floor",
            0,
            None,
            "below_popularity_floor",
            description=(
                f"the policy's ndcg@10 >= {t.policy_vs_popularity_min_ratio:g} x the popularity "
                "baseline's, same dataset and split"
            ),
        ),
    ]
    return gx.ExpectationSuite(name="model_metrics", expectations=expectations)


SUITES: dict[str, Callable[[Thresholds], gx.ExpectationSuite]] = {
    "raw_watch_logs": raw_suite,
    "staged_events": staged_events_suite,
    "sessions": sessions_suite,
    "sequences": sequences_suite,
    "splits": splits_suite,
    "user_features": user_features_suite,
    "item_features": item_features_suite,
    "reward_predictions": reward_predictions_suite,
    "advantages": advantages_suite,
    "model_metrics": model_metrics_suite,
}


def suite_for(stage: str, thresholds: Thresholds | None = None) -> gx.ExpectationSuite:
    if stage not in SUITES:
        raise KeyError(f"no suite for stage {stage!r}; stages: {', '.join(SUITES)}")
    return SUITES[stage](thresholds or default_thresholds())
