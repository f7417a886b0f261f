"""The reward model's gate: GX suite `reward_predictions` on its test predictions."""

from orchestration.gates import parquet_gate_check

gx_reward_predictions = parquet_gate_check(
    "reward_model",
    "reward_predictions",
    lambda layout: layout.reward_test_predictions,
    "GX suite `reward_predictions` on reward/test_predictions.parquet: r_hat and the user/item "
    "mean baselines in [1, 5], std >= 0, everything finite.",
)
