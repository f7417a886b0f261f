"""The warehouse gates: GX suites on the dbt models that the later stages read."""

from orchestration.gates import warehouse_gate_check

gx_staged_events = warehouse_gate_check(
    ["staging", "stg_watch_events"],
    "staged_events",
    "GX suite `staged_events`: keys, unique ids, watch time, ratings, no future events.",
)
gx_sessions = warehouse_gate_check(
    ["marts", "fct_watch_sessions"],
    "sessions",
    "GX suite `sessions`: unique sessions, ordered start/end, non-empty, non-negative spans.",
)
gx_sequences = warehouse_gate_check(
    ["marts", "user_sequences"],
    "sequences",
    "GX suite `sequences`: no empty or short sequences, ordered timestamps, aligned lists, "
    "rewards in range.",
)
gx_splits = warehouse_gate_check(
    ["marts", "split_temporal_events"],
    "splits",
    "GX suite `splits`: every event on the right side of the temporal split cut-offs, "
    "three non-empty splits.",
)
gx_user_features = warehouse_gate_check(
    ["marts", "user_reward_stats_daily"],
    "user_features",
    "GX suite `user_features` (Feast offline table): ranges, counts, unique keys, freshness.",
)
gx_item_features = warehouse_gate_check(
    ["marts", "item_reward_stats_daily"],
    "item_features",
    "GX suite `item_features` (Feast offline table): ranges, counts, unique keys, freshness.",
)
