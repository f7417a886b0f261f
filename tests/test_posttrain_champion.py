"""The guarded champion rule on hand-made summary tables: each check alone rejects a candidate and
is named, the highest-judge eligible candidate wins, nothing is registered without an eligible
candidate or without BC, the recorded every-method studies (docs/studies/) register a policy not
below the pretrained one on NDCG@10, and today's default run still registers asft@beta=0.1."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from training.posttrain.champion import CHECKS, choose_champion
from training.posttrain.champion_replay import decision_table, main, summary_from_csv
from training.posttrain.settings import PosttrainSettings

STUDIES = Path(__file__).resolve().parents[1] / "docs" / "studies"

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
    assert (DEFAULTS.ndcg_margin, DEFAULTS.max_kl) == (0.03, 1.0)
    assert "require_significant" not in {f.name for f in dataclasses.fields(PosttrainSettings)}
    with pytest.raises(ValueError, match=r"ndcg_margin must be in \[0, 1\) and max_kl >= 0"):
        PosttrainSettings(max_kl=-1.0)
    with pytest.raises(ValueError, match=r"ndcg_margin must be in \[0, 1\)"):
        PosttrainSettings(ndcg_margin=1.0)


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
        # NDCG@10 3.7% below the reference 0.30 > 3% (exactly 3% below passes: next test).
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
    # NDCG@10 exactly ndcg_margin below the reference and KL exactly max_kl.
    at_bounds = row("asft", 1.0, 3.5, (1.0 - DEFAULTS.ndcg_margin) * 0.30, 1.0)
    d = choose_champion(table(at_bounds), **RULE)
    assert d["registered"]
    ndcg = d["checks"]["asft@beta=1"]["ndcg_not_worse"]
    assert ndcg["relative_difference"] == pytest.approx(-DEFAULTS.ndcg_margin)
    strict = choose_champion(table(at_bounds), ndcg_margin=0.02, max_kl=0.5)
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


def test_the_reference_is_the_better_of_bc_and_the_pretrained_policy():
    # BC ranks worse than the pretrained policy: the candidate must keep the pretrained's NDCG@10.
    summary = table(row("asft", 1.0, 3.5, 0.30, 0.3))
    summary["bc"] = row("bc", None, 3.0, 0.25, 0.1)
    ndcg = choose_champion(summary, **RULE)["checks"]["asft@beta=1"]["ndcg_not_worse"]
    assert (ndcg["reference"], ndcg["reference_value"], ndcg["passed"]) == (
        "pretrained",
        0.30,
        True,
    )
    summary["asft@beta=1"] = row("asft", 1.0, 3.5, 0.28, 0.3)  # above BC's, 6.7% below pretrained
    assert not choose_champion(summary, **RULE)["registered"]


def test_the_recorded_ml100k_study_registers_asft_not_a_policy_below_the_pretrained_one():
    # ML-100K, every method, 3 seeds (docs/results.md): PPO has the highest judge reward, IPO the
    # next; both rank below the pretrained policy.
    summary = summary_from_csv(STUDIES / "every-method-ml100k.csv")
    d = choose_champion(summary, **RULE)
    assert d["label"] == "asft@beta=0.1"
    assert summary[d["label"]]["ndcg@10"]["mean"] >= summary["pretrained"]["ndcg@10"]["mean"]
    failed = {k: [c for c in CHECKS if not v[c]["passed"]] for k, v in d["checks"].items()}
    assert failed["ppo@beta=0.1"] == ["ndcg_not_worse", "kl_within_bound"]
    assert failed["ipo@beta=0.1"] == ["ndcg_not_worse"]  # 5.5% below BC, within 1.0 nat
    assert failed["asft@beta=10"] == ["judge_beats_bc"]
    assert "| ppo@beta=0.1 |" in decision_table(d)


def test_the_recorded_simulator_study_registers_asft_and_rejects_every_rl_baseline(capsys):
    main([str(STUDIES / "every-method-simulator.csv")])
    out = capsys.readouterr().out
    assert "registered: asft@beta=0.1 (" in out
    for rl in ("dpo", "ipo", "cql", "ppo"):
        assert f"{rl}@beta=0.1 fails ndcg_not_worse" in out


def test_a_table_that_is_not_a_study_is_refused_naming_the_missing_columns(tmp_path):
    bad = tmp_path / "results.csv"
    bad.write_text("policy,method\nbc,bc\n")
    with pytest.raises(ValueError, match=r"not a post-training results table .*judge_reward_mean"):
        summary_from_csv(bad)


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
    ndcg = d["checks"]["asft@beta=0.1"]["ndcg_not_worse"]
    assert ndcg["relative_difference"] == pytest.approx(0.309865 / 0.319132 - 1.0)
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
