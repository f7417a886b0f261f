"""The sample delivery shipped in the repo: what a landing file looks like, ready to ingest.

    python -m watchlogs.sample_delivery          # (re)writes watchlogs/samples/<name>.parquet

Thirty events of the default simulator world's users and titles, dated the day after its last
event (real events of a late day, moved on to that day, with new event ids), so after `make run`
the delivery passes the raw contract against the run's title catalogue and adds one day of data:
    make ingest-sample
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from watchlogs.config import SimulatorConfig
from watchlogs.schema import conform
from watchlogs.simulator import simulate

SAMPLE = Path(__file__).resolve().parent / "samples" / "delivery-sample.parquet"
ROWS = 30


def sample_delivery(rows: int = ROWS, seed: int = 0) -> pa.Table:
    """`rows` events in the raw contract, dated the day after the default world ends."""
    events = simulate(SimulatorConfig()).events
    days = pc.cast(events["event_ts"], pa.date32())
    counts = pc.value_counts(days).to_pylist()
    # Activity tapers off at the window's end: take the latest day with enough events.
    source_day = max(c["values"] for c in counts if c["counts"] >= rows)
    target_day = pc.max(days).as_py() + timedelta(days=1)
    candidates = events.filter(pc.equal(days, pa.scalar(source_day)))
    rng = np.random.default_rng(seed)
    picked = candidates.take(pa.array(np.sort(rng.choice(len(candidates), rows, replace=False))))
    moved = [t + (target_day - source_day) for t in picked["event_ts"].to_pylist()]
    picked = picked.set_column(
        picked.schema.get_field_index("event_ts"),
        "event_ts",
        pa.array(moved, pa.timestamp("us", tz="UTC")),
    )
    ids = pa.array([f"sample-{i:04d}" for i in range(rows)], pa.string())
    return conform(picked.set_column(picked.schema.get_field_index("event_id"), "event_id", ids))


def main() -> None:
    SAMPLE.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(sample_delivery(), SAMPLE)
    print(SAMPLE)


if __name__ == "__main__":
    main()
