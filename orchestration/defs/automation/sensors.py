"""A sensor that starts ingestion when a delivery lands in <data>/landing/watch_logs/."""

from __future__ import annotations

import hashlib
import time

import dagster as dg

from common.layout import DataLayout
from common.paths import data_dir
from orchestration.defs.automation.jobs import daily_refresh_job
from watchlogs.sources import LANDING_SOURCE

# A file still being copied in is left for the next tick: it must be this old (unchanged).
SETTLE_SECONDS = 10


def pending_deliveries(settle_seconds: float = SETTLE_SECONDS) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of every settled Parquet delivery waiting in the landing folder."""
    folder = DataLayout(data_dir()).landing
    if not folder.exists():
        return []
    cutoff = time.time_ns() - int(settle_seconds * 1e9)
    stats = [(p.name, p.stat()) for p in folder.glob("*.parquet")]
    return sorted((n, st.st_size, st.st_mtime_ns) for n, st in stats if st.st_mtime_ns <= cutoff)


@dg.sensor(
    job=daily_refresh_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="New watch-log files in the landing folder -> ingest them through the raw gate, "
    "rebuild the warehouse and refresh the features.",
)
def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    pending = pending_deliveries()
    if not pending:
        return dg.SensorResult(skip_reason="no delivery waiting in the landing folder")
    # One run per distinct set of waiting files: a re-evaluation while the run is queued asks
    # again with the same key (Dagster drops it); a fixed file of the same name has a new key.
    key = hashlib.sha256(repr(pending).encode()).hexdigest()[:16]
    names = ", ".join(name for name, _, _ in pending)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"landing-{key}",
                run_config={"ops": {"raw_watch_logs": {"config": {"source": LANDING_SOURCE}}}},
                tags={"landing_files": names[:200]},
            )
        ]
    )


SENSORS = [landing_sensor]
