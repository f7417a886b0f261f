"""A partitioned run ingests only the landing deliveries whose events all fall in its days; the
others wait in the landing folder, byte for byte (real GX gate, real Dagster context)."""

import datetime as dt

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq

from common.paths import raw_watch_logs_dir
from orchestration.defs.raw.assets import _within
from validation.landing import INGESTED, ingest_landing
from validation.paths import landing_dir
from watchlogs.partitioned import DayWindow, read_watch_logs
from watchlogs.simulator import SimulatorConfig, simulate


def test_only_deliveries_inside_the_window_are_ingested(tmp_path):
    events = simulate(SimulatorConfig.tiny(n_events=400, n_days=6)).events
    days = pc.cast(events["event_ts"], "date32")
    first = days[0].as_py()
    landing = landing_dir(tmp_path)
    landing.mkdir(parents=True)
    inside, outside = landing / "a-day-two.parquet", landing / "b-days-three-on.parquet"
    day_two = first + dt.timedelta(days=1)
    pq.write_table(events.filter(pc.equal(days, day_two)), inside)
    pq.write_table(events.filter(pc.greater(days, day_two)), outside)
    waiting_bytes = outside.read_bytes()

    window = DayWindow(day_two, day_two)
    result = ingest_landing(tmp_path, accept=_within(dg.build_asset_context(), window))

    assert [(d.name, d.status) for d in result.deliveries] == [(inside.name, INGESTED)]
    assert not inside.exists()  # moved on once ingested
    assert outside.read_bytes() == waiting_bytes  # untouched, waits for an unpartitioned run
    raw = read_watch_logs(raw_watch_logs_dir(tmp_path))
    assert raw.num_rows == result.raw_events_added == pc.sum(pc.equal(days, day_two)).as_py() > 0
    assert set(pc.cast(raw["event_ts"], "date32").to_pylist()) == {day_two}
