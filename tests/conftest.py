"""Test-wide set-up: every test writes under a throw-away data directory, never the user's data/,
and the session starts with the code location prepared (the dbt manifest parsed)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    """The tiny built world (tests/tiny_world.py), read-only: copy it before writing. Under
    pytest-xdist the workers share one, built by the first that asks."""
    from tests.tiny_world import shared_world

    base = tmp_path_factory.getbasetemp()
    return shared_world(base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)


# The slowest modules (most build a Dagster world of their own), slowest first by their time in
# the suite. `make test` runs two pytest-xdist workers, a module to a worker (`--dist loadfile`,
# so module fixtures are built once), handing modules out in this collection order
# (`--no-loadscope-reorder`): the long ones start first so the workers finish together. A module
# missing here only runs later; the order changes no result.
SLOW_FIRST = (
    "test_validation_corrupt_inputs.py",  # first: it builds the shared tiny world
    "test_orchestration.py",
    "test_orchestration_partitions.py",
    "test_ui.py",
    "test_dbt_transforms.py",
    "test_training_ddp_launch.py",
    "test_serving_pipeline.py",
    "test_posttrain_registry.py",
    "test_validation_gates.py",
    "test_robustness_study.py",
    "test_serving_model.py",
    "test_orchestration_import.py",
)


def pytest_collection_modifyitems(session, config, items) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))
