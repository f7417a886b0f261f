"""Test-wide set-up: every test writes under a throw-away data directory, never the user's data/,
and the session starts with the code location prepared (the dbt manifest parsed)."""

from __future__ import annotations

import os
import tempfile

# Always a fresh data directory, even when the caller (the Makefile) exports ASFT_DATA_DIR: tests
# must never write into the user's data/ nor see a previous test run's checkpoints.
os.environ["ASFT_DATA_DIR"] = tempfile.mkdtemp(prefix="asft-test-data-")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")


def pytest_sessionstart(session) -> None:
    """`dbt parse` when the manifest is missing or stale (as `make prepare`), before the test
    modules import orchestration.definitions: a fresh clone's `pytest` works as `make test`."""
    from orchestration.prepare import prepare

    prepare()
