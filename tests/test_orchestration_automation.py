"""Schedules, jobs and the landing sensor, evaluated by real Dagster (no daemon needed)."""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg
import pyarrow.parquet as pq

from orchestration.definitions import defs
from orchestration.defs.automation.sensors import landing_sensor
from validation.paths import landing_dir
from watchlogs.simulator import SimulatorConfig, simulate


def _keys(job_name: str) -> set[str]:
    job = defs.resolve_job_def(job_name)
    return {k.to_user_string() for k in job.asset_layer.selected_asset_keys}


def test_daily_refresh_and_weekly_retraining_split_the_graph():
    daily, weekly = _keys("daily_refresh_job"), _keys("weekly_retraining_job")
    assert {"raw_watch_logs", "staging/stg_watch_events", "marts/user_sequences"} <= daily
    assert "pretrained_policy" in weekly and "pretrained_policy" not in daily
    assert not daily & weekly
    everything = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert daily | weekly == everything  # every stage is on one schedule or the other


def test_schedules_request_their_jobs_at_the_set_times():
    schedules = {s.name: s for s in defs.get_repository_def().schedule_defs}
    daily = schedules["daily_refresh_job_schedule"]
    assert daily.job_name == "daily_refresh_job" and daily.execution_timezone == "UTC"
    tick = daily.evaluate_tick(
        dg.build_schedule_context(
            scheduled_execution_time=dt.datetime(2026, 1, 5, 2, tzinfo=dt.UTC),
            repository_def=defs.get_repository_def(),  # resolves the partitioned request
        )
    )
    assert len(tick.run_requests) == 1
    assert schedules["weekly_retraining_job_schedule"].job_name == "weekly_retraining_job"


def test_landing_sensor_requests_one_ingest_run_per_new_delivery(tmp_path):
    with dg.instance_for_test() as instance:
        ctx = lambda: dg.build_sensor_context(instance=instance, definitions=defs)  # noqa: E731
        first = landing_sensor.evaluate_tick(ctx())
        assert not first.run_requests and "no delivery" in first.skip_message

        delivery = landing_dir() / "delivery-1.parquet"
        delivery.parent.mkdir(parents=True, exist_ok=True)
        events = simulate(SimulatorConfig.tiny()).events
        pq.write_table(events, delivery)
        fresh = landing_sensor.evaluate_tick(ctx())
        assert not fresh.run_requests  # still being written, as far as the sensor can tell
        os.utime(delivery, ns=(1, 1))  # settled long ago
        (request,) = landing_sensor.evaluate_tick(ctx()).run_requests
        assert request.run_config["ops"]["raw_watch_logs"]["config"]["source"] == "landing"
        # The request is a valid run of the daily job.
        dg.validate_run_config(defs.resolve_job_def("daily_refresh_job"), request.run_config)
        (again,) = landing_sensor.evaluate_tick(ctx()).run_requests
        assert again.run_key == request.run_key  # same waiting file: Dagster will not rerun it

        pq.write_table(events.slice(0, 10), delivery)  # the delivery is replaced (fixed)
        os.utime(delivery, ns=(2, 2))
        (fixed,) = landing_sensor.evaluate_tick(ctx()).run_requests
        assert fixed.run_key != request.run_key
