"""The scaling benchmark's bookkeeping: the worlds it builds, every step of main_job attributed to
a stage, per-stage figures from polled samples, and growth exponents checked by hand."""

from __future__ import annotations

import math

import pytest

from benchmarks.scaling import events_of, exponents, per_stage, stage_of, table, world
from orchestration.definitions import defs


def test_worlds_grow_users_with_events_and_titles_as_the_issue_world():
    assert world(events_of("1M")) == {"n_events": 1_000_000, "n_users": 6_000, "n_items": 3_500}
    assert world(events_of("3M")) == {"n_events": 3_000_000, "n_users": 18_000, "n_items": 7_000}
    assert world(events_of("10M"))["n_users"] == 60_000
    assert events_of("0.3M") == 300_000
    with pytest.raises(ValueError, match="ending in M"):
        events_of("300k")


def test_every_step_of_main_job_belongs_to_a_stage():
    steps = [node.name for node in defs.resolve_job_def("main_job").graph.nodes]
    assert {stage_of(s) for s in steps} >= {"ingest", "dbt", "pretrain", "advantages", "serving"}
    assert [s for s in steps if stage_of(s) == "other"] == []


def test_per_stage_sums_walls_and_takes_cpu_and_peak_inside_each_step():
    # (time, cumulative CPU s, RSS MB) every second; two pretrain steps and one reward step.
    samples = [(float(t), 2.0 * t, 100.0 + (50.0 if t == 3 else 0.0)) for t in range(11)]
    steps = [("pretrained_policy", 1.0, 4.0), ("pretrained_policy_gx_model_metrics", 4.0, 5.0),
             ("reward_model", 6.0, 10.0)]  # fmt: skip
    stages = per_stage(steps, samples)
    assert stages["pretrain"] == {"wall_s": 4.0, "cpu_s": 8.0, "peak_rss_mb": 150.0}
    assert stages["reward"] == {"wall_s": 4.0, "cpu_s": 8.0, "peak_rss_mb": 100.0}


def test_exponents_are_log_log_slopes():
    def result(events: int, power: float) -> dict:
        cost = (events / 1e5) ** power
        return {"wall_s": cost, "cpu_s": cost, "peak_rss_mb": 1024.0, "world": world(events),
                "stages": {"pretrain": {"wall_s": cost, "cpu_s": 2 * cost, "peak_rss_mb": 1.0},
                           "advantages": {"wall_s": cost**1.5, "cpu_s": 1.0,
                                          "peak_rss_mb": 1.0}}}  # fmt: skip

    results = {"1M": result(1_000_000, 1.0), "10M": result(10_000_000, 1.0)}
    wall, cpu = exponents(results, "wall_s"), exponents(results, "cpu_s")
    assert math.isclose(wall["pretrain"]["1M->10M"], 1.0)
    assert math.isclose(wall["advantages"]["1M->10M"], 1.5)
    assert math.isclose(cpu["advantages"]["1M->10M"], 0.0)
    assert math.isclose(wall["job"]["1M->10M"], 1.0)
    assert "| pretrain | 10 / 20 / 0.00 | 100 / 200 / 0.00 | 1.00 (1.00) |" in table(results)
