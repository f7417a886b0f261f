"""The guarded champion rule on hand-made summary tables: each check alone rejects a candidate and
is named, the highest-judge eligible candidate wins, nothing is registered without an eligible
candidate or without BC, the ML-100K reward hacker is refused, and today's default run still
registers asft@beta=0.1."""

from __future__ import annotations

import dataclasses

import pytest

from training.posttrain.champion import CHECKS, choose_champion
from training.posttrain.settings import PosttrainSettings

DEFAULTS = PosttrainSettings()
RULE = {"ndcg_margin": DEFAULTS.ndcg_margin, "max_kl": DEFAULTS.max_kl}


def row(method, beta, judge, ndcg, kl, *, judge_ci=0.01, truth=None) -> dict:
    """A summary row as study.summarise writes it: {metric: {mean, ci95}}."""
    out = {
        "method": method,
        "beta": beta,
        "runs": 3,
        "judge_reward": {"mean": judge, "ci95": judge_ci},
        "ndcg@10": {"mean": ndcg, "ci95": 0.005},
        "kl": {"mean": kl, "ci95": 0.01},
    }
    return out | ({"true_satisfaction": {"mean": truth, "ci95": 0.01}} if truth is not None else {})


def table(*candidates: dict) -> dict:
    """BC (judge 3.0 ± 0.01, NDCG@10 0.30, KL 0.1) and the pretrained policy, then `candidates`
    under their labels ("asft@beta=1")."""
    return {
        "pretrained": row("pretrained", None, 3.0, 0.30, 0.0, judge_ci=0.0),
        "bc": row("bc", None, 3.0, 0.30, 0.1),
    } | {f"{r['method']}@beta={r['beta']:g}": r for r in candidates}


def test_the_defaults_are_the_documented_ones():
    assert (DEFAULTS.ndcg_margin, DEFAULTS.max_kl) == (0.01, 1.0)
    assert "require_significant" not in {f.name for f in dataclasses.fields(PosttrainSettings)}
    with pytest.raises(ValueError, match="ndcg_margin and max_kl must be >= 0"):
        PosttrainSettings(max_kl=-1.0)


def test_a_candidate_passing_every_check_is_registered():
    d = choose_champion(table(row("asft", 1.0, 3.5, 0.30, 0.3)), **RULE)
    assert d["registered"] and d["label"] == "asft@beta=1"
    checks = d["checks"]["asft@beta=1"]
    assert checks["eligible"] and all(checks[c]["passed"] for c in CHECKS)
    assert checks["judge_beats_bc"] == {"candidate": 3.5, "candidate_ci95": 0.01, "bc": 3.0,
                                        "bc_ci95": 0.01, "passed": True}  # fmt: skip
    assert checks["kl_within_bound"] == {"candidate": 0.3, "bound": 1.0, "passed": True}
    assert "rejected" not in d["reason"]


@pytest.mark.parametrize(
    ("candidate", "failing"),
    [
        # Higher mean judge reward but overlapping intervals: 3.015 - 0.01 < 3.0 + 0.01.
        (row("asft", 1.0, 3.015, 0.30, 0.3), "judge_beats_bc"),
        # NDCG@10 below BC's by 0.011 > 0.01 (exactly 0.01 below passes: next test).
        (row("asft", 1.0, 3.5, 0.289, 0.3), "ndcg_not_worse"),
        (row("asft", 1.0, 3.5, 0.30, 1.01), "kl_within_bound"),
    ],
)
def test_each_check_failing_alone_rejects_and_is_named(candidate, failing):
    d = choose_champion(table(candidate), **RULE)
    assert not d["registered"] and d["label"] is None
    checks = d["checks"]["asft@beta=1"]
    assert not checks["eligible"]
    assert [c for c in CHECKS if not checks[c]["passed"]] == [failing]
    assert f"asft@beta=1 fails {failing}" in d["reason"]


def test_the_bounds_are_inclusive():
    # NDCG@10 exactly ndcg_margin below BC's (0.30 - 0.01 == 0.29 in floats) and KL exactly max_kl.
    at_bounds = row("asft", 1.0, 3.5, 0.29, 1.0)
    d = choose_champion(table(at_bounds), **RULE)
    assert d["registered"]
    assert d["checks"]["asft@beta=1"]["ndcg_not_worse"]["difference"] == pytest.approx(-0.01)
    strict = choose_champion(table(at_bounds), ndcg_margin=0.005, max_kl=0.5)
    assert not strict["registered"]
    assert "asft@beta=1 fails ndcg_not_worse, kl_within_bound" in strict["reason"]


def test_the_highest_judge_eligible_candidate_wins_over_a_higher_judge_failing_one():
    d = choose_champion(
        table(
            row("ppo", 0.1, 3.9, 0.30, 1.5),  # the highest judge reward, too far from pi_0
            row("asft", 0.1, 3.6, 0.295, 0.4),
            row("asft", 1.0, 3.4, 0.30, 0.2),
        ),
        **RULE,
    )
    assert d["registered"] and d["label"] == "asft@beta=0.1"
    assert set(d["checks"]) == {"ppo@beta=0.1", "asft@beta=0.1", "asft@beta=1"}
    assert d["reason"].startswith("asft@beta=0.1: the highest judge reward")
    assert "rejected: ppo@beta=0.1 fails kl_within_bound" in d["reason"]


def test_nothing_is_registered_when_no_candidate_is_eligible_and_the_reason_lists_each():
    d = choose_champion(
        table(
            row("asft", 0.1, 3.5, 0.25, 2.0),
            row("asft", 10.0, 3.0, 0.30, 0.1),
        ),
        **RULE,
    )
    assert not d["registered"] and d["label"] is None
    assert "asft@beta=0.1 fails ndcg_not_worse, kl_within_bound" in d["reason"]
    assert "asft@beta=10 fails judge_beats_bc" in d["reason"]
    assert not any(c["eligible"] for c in d["checks"].values())


def test_without_bc_or_without_a_candidate_nothing_is_registered():
    no_bc = table(row("asft", 1.0, 3.5, 0.30, 0.3))
    del no_bc["bc"]
    d = choose_champion(no_bc, **RULE)
    assert not d["registered"] and d["label"] is None and d["checks"] == {}
    assert d["reason"] == "BC is not in the study: nothing to compare against"
    d = choose_champion(table(), **RULE)
    assert not d["registered"] and d["reason"] == "no post-trained method besides BC"


def test_true_satisfaction_is_reported_but_never_checked():
    # The simulator's oracle says the candidate is worse than BC: it still wins on the checks.
    d = choose_champion(table(row("asft", 1.0, 3.5, 0.30, 0.3, truth=0.1))
                        | {"bc": row("bc", None, 3.0, 0.30, 0.1, truth=0.5)}, **RULE)  # fmt: skip
    assert d["registered"]
    truth = d["checks"]["asft@beta=1"]["true_satisfaction"]
    assert truth == {"candidate": 0.1, "bc": 0.5, "difference": pytest.approx(-0.4)}
    assert "passed" not in truth


def test_an_ml100k_like_table_registers_asft_not_the_reward_hacker():
    # PPO: the highest judge reward, NDCG@10 0.013 below BC's and KL 1.58; A-SFT passes.
    d = choose_champion(
        {
            "pretrained": row("pretrained", None, 3.60, 0.0994, 0.0, judge_ci=0.0),
            "bc": row("bc", None, 3.61, 0.0985, 0.08),
            "asft@beta=0.1": row("asft", 0.1, 3.70, 0.0960, 0.30),
            "ppo@beta=0.1": row("ppo", 0.1, 3.95, 0.0855, 1.58),
        },
        **RULE,
    )
    assert d["registered"] and d["label"] == "asft@beta=0.1"
    ppo = d["checks"]["ppo@beta=0.1"]
    assert ppo["judge_beats_bc"]["passed"] and not ppo["eligible"]
    assert ppo["ndcg_not_worse"]["difference"] == pytest.approx(-0.013)
    assert "ppo@beta=0.1 fails ndcg_not_worse, kl_within_bound" in d["reason"]


def test_the_default_run_still_registers_asft_at_beta_0_1():
    # reports/posttrain.json of the default run (simulator, 3 seeds), to six decimals.
    def r(method, beta, judge, judge_ci, ndcg, kl):
        return row(method, beta, judge, ndcg, kl, judge_ci=judge_ci)

    d = choose_champion(
        {
            "pretrained": r("pretrained", None, 3.878833, 0.0, 0.315117, 0.0),
            "bc": r("bc", None, 3.878605, 0.009382, 0.319132, 0.09049),
            "asft@beta=0.1": r("asft", 0.1, 3.991518, 0.012999, 0.309865, 0.346777),
            "asft@beta=1": r("asft", 1.0, 3.904635, 0.01198, 0.319241, 0.098949),
            "asft@beta=10": r("asft", 10.0, 3.881308, 0.009892, 0.319145, 0.090848),
        },
        **RULE,
    )
    assert d["registered"] and d["label"] == "asft@beta=0.1"
    assert d["checks"]["asft@beta=0.1"]["ndcg_not_worse"]["difference"] == pytest.approx(-0.009267)
    assert d["checks"]["asft@beta=1"]["eligible"]  # eligible, but a lower judge reward
    assert "rejected: asft@beta=10 fails judge_beats_bc" in d["reason"]


def _summary(judge: tuple[float, float], truth: tuple[float, float] | None) -> dict:
    def with_truth(method, beta, j, t):
        r = row(method, beta, j, 0.30, 0.2, judge_ci=0.1)
        return r | ({"true_satisfaction": {"mean": t, "ci95": 0.1}} if t is not None else {})

    return {
        "bc": with_truth("bc", None, 3.0, 0.5 if truth else None),
        "asft@beta=1": with_truth("asft", 1.0, judge[0], truth[0] if truth else None),
        "asft@beta=3": with_truth("asft", 3.0, judge[1], truth[1] if truth else None),
    }


def test_champion_rule_both_ways():
    win = choose_champion(_summary((3.5, 3.1), (0.7, 0.6)), **RULE)
    assert win["registered"] and win["label"] == "asft@beta=1"
    # Higher judge reward but lower true satisfaction: the oracle never selects, so it is
    # registered, and the report shows the truth it would have failed.
    lose = choose_champion(_summary((3.5, 3.1), (0.4, 0.6)), **RULE)
    assert lose["registered"] and lose["checks"]["asft@beta=1"]["true_satisfaction"]["bc"] == 0.5
    # Higher means but overlapping intervals: never registered (the judge check is interval-based).
    close = _summary((3.05, 2.9), (0.55, 0.5))
    assert not choose_champion(close, **RULE)["registered"]
    assert "asft@beta=1 fails judge_beats_bc" in choose_champion(close, **RULE)["reason"]
    # MovieLens (no oracle): the same checks decide.
    assert choose_champion(_summary((3.5, 3.1), None), **RULE)["registered"]
    assert not choose_champion(_summary((2.5, 2.1), None), **RULE)["registered"]
