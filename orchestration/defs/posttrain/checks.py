"""The advantages' gate: GX suite `advantages` on the advantages Parquet."""

from orchestration.gates import parquet_gate_check

gx_advantages = parquet_gate_check(
    "advantages",
    "advantages",
    lambda layout: layout.advantages,
    "GX suite `advantages`: finite, |A| within bounds, per state the policy-weighted advantage "
    "sum_a pi(a|s) A(s, a) within tolerance of zero.",
)
