"""Raw watch logs: the entry of the chain, produced by the configured source."""

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import dagster as dg
import pyarrow.parquet as pq
from pydantic import Field

from common.layout import DataLayout
from common.paths import data_dir
from orchestration.config import config_from
from orchestration.defs.automation.partitions import partition_days, watch_log_days
from watchlogs.fetch_ml100k import fetch_ml100k
from watchlogs.partitioned import DayWindow, days_spanned
from watchlogs.simulator import SimulatorConfig
from watchlogs.sources import LANDING_SOURCE, SOURCES, produce_raw_watch_logs

# One choice per source of raw logs: watchlogs' sources, and the landing folder's deliveries.
RawSource = Literal[(*SOURCES, LANDING_SOURCE)]  # type: ignore[valid-type]


class RawWatchLogsConfig(config_from(SimulatorConfig, "SimulatorRunConfig")):  # type: ignore[misc]
    """Which source produces the raw logs, and the simulator's knobs (`settings()` gives the
    SimulatorConfig). Simulator is the default; `landing` ingests the files dropped into
    <data>/landing/watch_logs/ through the raw GX gate."""

    source: RawSource = Field(
        default="simulator",
        description="simulator (seeded, with a hidden truth), movielens (a local ratings file) "
        "or landing (the deliveries waiting in <data>/landing/watch_logs/)",
    )
    movielens_path: str = Field(
        default="",
        description="the MovieLens ratings file; empty: ML-100K under the data directory "
        "(fetched on first use, `make ml100k`)",
    )


@dg.asset(
    group_name="ingest",
    kinds={"parquet", "python"},
    partitions_def=watch_log_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    description=(
        "Raw watch logs in the contract's Arrow schema, daily-partitioned Parquet under "
        "<data>/raw/watch_logs/. Source: the seeded simulator (default; its hidden true "
        "satisfaction is saved apart, under <data>/oracle/) or a local MovieLens file. "
        "A partitioned run (re)writes only its days of the same dataset; a run without a "
        "partition writes the whole source."
    ),
)
def raw_watch_logs(
    context: dg.AssetExecutionContext, config: RawWatchLogsConfig
) -> dg.MaterializeResult:
    root = data_dir()
    days = partition_days(context)
    if config.source == LANDING_SOURCE:
        return _ingest_landing(context, root, days)
    movielens_path = None
    if config.source == "movielens":
        # No path given: ML-100K, fetched into the data directory on first use (never committed).
        movielens_path = Path(config.movielens_path) if config.movielens_path else fetch_ml100k()
    figures = produce_raw_watch_logs(
        source=config.source,
        data_root=root,
        simulator_config=config.settings(),
        movielens_path=movielens_path,
        progress=context.log.info,
        window=days,
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": figures["events"],
            "days": str(days) if days else "all",
            "users": figures["users"],
            "titles": figures["titles"],
            "daily_partitions": figures["partitions"],
            "date_range": f"{figures['first_event']} .. {figures['last_event']}",
            "source": figures["source"],
            "fingerprint": figures["fingerprint"],
            "path": dg.MetadataValue.path(str(DataLayout(root).raw_watch_logs)),
        }
    )


def _ingest_landing(
    context: dg.AssetExecutionContext, root: Path, days: DayWindow | None
) -> dg.MaterializeResult:
    """Landing deliveries -> raw partitions (good ones) or quarantine (refused ones). Refusals
    do not raise here: the blocking check `gx_raw_contract` reports them and stops downstream.
    A partitioned run ingests only the deliveries whose events all fall in its days."""
    from validation.landing import ingest_landing  # GX is slow to import; only this path needs it

    result = ingest_landing(root, accept=None if days is None else _within(context, days))
    result.save(DataLayout(root).landing_result, run_id=context.run.run_id)
    context.log.info(result.summary())
    raw = DataLayout(root).raw_watch_logs
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in raw.glob("date=*/*.parquet"))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "source": LANDING_SOURCE,
            "deliveries": len(result.deliveries),
            "deliveries_ingested": len(result.deliveries) - len(result.failed),
            "deliveries_refused": len(result.failed),
            "rows_ingested": result.raw_events_added,
            "landing_summary": dg.MetadataValue.md(f"```\n{result.summary()}\n```"),
            "path": dg.MetadataValue.path(str(raw)),
        }
    )


def _within(context: dg.AssetExecutionContext, days: DayWindow) -> Callable[[Path], bool]:
    """Accepts a delivery whose events all fall in `days`: a delivery is gated and ingested
    whole, so one that reaches outside the run's partitions (or cannot be read) waits in the
    landing folder for an unpartitioned run (the landing sensor's)."""

    def accept(path: Path) -> bool:
        try:
            spanned = days_spanned(path)
        except Exception:  # noqa: BLE001 - unreadable: the unpartitioned run rejects it with a reason
            spanned = None
        if spanned is not None and spanned.first in days and spanned.last in days:
            return True
        context.log.info(f"{path.name} reaches outside {days} (or is unreadable): it waits")
        return False

    return accept
