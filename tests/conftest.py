"""Test-wide set-up: every test writes under a throw-away data directory, never the user's data/."""

from __future__ import annotations

import os
import tempfile

# Set before any project module is imported: orchestration pins the data directory at import.
# Always a fresh one, even when the caller (the Makefile) exports ASFT_DATA_DIR: tests must never
# write into the user's data/ nor see a previous test run's checkpoints.
os.environ["ASFT_DATA_DIR"] = tempfile.mkdtemp(prefix="asft-test-data-")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
