"""The dbt project as Dagster assets: every model is an asset and every dbt test an asset check.

Two sets, as dagster-dbt documents for partitioned incremental models. The models tagged
`daily_partitioned` (fct_reward_events: day D holds exactly day D's events) are partitioned by
watch-log day like raw_watch_logs; a partitioned run hands its days to dbt in the environment
variables ASFT_EVENT_DATE_FROM / ASFT_EVENT_DATE_TO and the model rewrites them (dbt reads them
when it runs the model, so unlike `--vars` a window does not make dbt parse the project again).
Every other model is unpartitioned: whole-history tables, and the cumulative reward stats (day D
depends on every day before it, so they are no daily partition; dbt keeps them incremental by
changed dates). Dagster runs the unpartitioned set in two steps around the partitioned one
(staging -> fct_reward_events -> sessions, splits, sequences, stats).

Why not every incremental model: Dagster 1.13 cannot run a partitioned step that has a
partitioned input (the stats read fct_reward_events) in a run without a partition key
("Cannot access partition_key for a non-partitioned run"), and `make run`, the landing sensor
and the main job's tests run without one.
"""

import json
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)
from pydantic import Field

from common.layout import DataLayout
from common.paths import DATA_DIR_ENV, data_dir, warehouse_path
from common.warehouse import connect_read_only, relation_stats
from orchestration.defs.automation.partitions import partition_days, watch_log_days, window_env
from orchestration.prepare import dbt_env
from orchestration.resources import DUCKDB_WRITER_POOL, dbt_project
from watchlogs.partitioned import DayWindow
from watchlogs.sources import read_fingerprint

# dbt's own tag for the models partitioned by watch-log day (see the module doc).
_DAILY_PARTITIONED = "tag:daily_partitioned"


class WarehouseTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        folder = dbt_resource_props.get("fqn", ["", ""])[1:2]
        return (
            f"warehouse_{folder[0]}"
            if folder and dbt_resource_props["resource_type"] != "source"
            else None
        )


class TransformsConfig(dg.Config):
    full_refresh: bool = Field(
        default=False,
        description="rebuild the incremental models from scratch (done anyway when the raw "
        "dataset changed since they were built)",
    )


def _relations_by_asset_key() -> dict[dg.AssetKey, tuple[str, str]]:
    manifest = json.loads(dbt_project.manifest_path.read_text())
    translator = WarehouseTranslator()
    return {
        translator.get_asset_key(node): (node["schema"], node["alias"])
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "seed", "snapshot")
    }


def _built_from() -> dict[str, Any]:
    """Which raw dataset each model was last built from ({asset key: fingerprint}); a
    different one forces a full refresh of the step building it."""
    path = DataLayout(data_dir()).warehouse_built_from
    stamps = json.loads(path.read_text()) if path.exists() else {}
    return stamps if isinstance(stamps, dict) else {}  # older single stamp: rebuild once


def _needs_full_refresh(models: Iterable[dg.AssetKey], requested: bool) -> bool:
    current = (read_fingerprint(data_dir()) or {}).get("fingerprint")
    stamps = _built_from()
    return (
        requested
        or current is None
        or any(stamps.get(key.to_user_string()) != current for key in models)
    )


def record_built_from(models: Iterable[dg.AssetKey]) -> None:
    """Stamp dbt models as built from the raw dataset on disk, so the next run builds them
    incrementally. Dagster does it after each successful build; do it after building the same
    dataset outside Dagster (a `dbt build` from the CLI)."""
    fingerprint = (read_fingerprint(data_dir()) or {}).get("fingerprint")
    stamps = {**_built_from(), **{key.to_user_string(): fingerprint for key in models}}
    DataLayout(data_dir()).warehouse_built_from.write_text(
        json.dumps(stamps, indent=1, sort_keys=True)
    )


def start_from_kept_parse(kept: Path, target_path: Path) -> None:
    """Seed this invocation's target directory with the data directory's kept parse.

    dbt parses the whole project again when the profile differs from the parse's, and the
    DuckDB path (so the data directory) is part of the profile: `make prepare`'s parse
    (transforms/target/partial_parse.msgpack, which dagster-dbt copies in when the target has
    none) serves only its own data directory. A parse kept per data directory serves every later
    dbt step there, and concurrent runs on other data directories never replace it.
    """
    if kept.exists():
        target_path.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kept, target_path / "partial_parse.msgpack")


def keep_partial_parse(target_path: Path, kept: Path) -> None:
    """Keep this invocation's parse as the one the data directory's next dbt step starts from.
    dbt still checks every file's hash, so a parse of changed files costs only the files'
    parse. Replaced atomically: a concurrent reader gets a whole file."""
    parsed = target_path / "partial_parse.msgpack"
    if not parsed.exists():
        return
    kept.parent.mkdir(parents=True, exist_ok=True)
    staging = kept.with_name(f"{kept.name}.{os.getpid()}.tmp")
    shutil.copyfile(parsed, staging)
    os.replace(staging, kept)


@contextmanager
def _environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """os.environ with `values` set (None: unset) for the duration, then as it was. dagster-dbt
    starts dbt with a copy of this process's environment."""
    saved = {name: os.environ.get(name) for name in values}

    def apply(new: Mapping[str, str | None]) -> None:
        for name, value in new.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    apply(values)
    try:
        yield
    finally:
        apply(saved)


def _dbt_build(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    config: TransformsConfig,
    window: DayWindow | None = None,
) -> Iterator[Any]:
    """`dbt build` of the step's models (full refresh when the raw dataset changed since they
    were built, or when requested), with row counts and date ranges added to each model's
    materialization."""
    models = context.selected_asset_keys
    full_refresh = _needs_full_refresh(models, config.full_refresh)
    # dbt's unit tests check the SQL on fixed fixture rows, not the data: the test suite runs
    # them (`dbt build` in tests/test_dbt_transforms.py), the pipeline's builds skip them, as
    # dbt's docs advise for production.
    args = ["build", "--exclude-resource-type", "unit_test"]
    args += ["--full-refresh"] if full_refresh else []
    context.log.info(
        f"dbt {' '.join(args)}"
        + (" (full refresh: dataset changed or requested)" if full_refresh else " (incremental)")
        + (f", partition window {window.first}..{window.last}" if window else "")
    )
    # dbt inherits this process's environment: profiles.yml and the sources read the data
    # directory from it, pinned to the absolute path the Python stages use.
    os.environ[DATA_DIR_ENV] = dbt_env()[DATA_DIR_ENV]
    kept = DataLayout(data_dir()).dbt_parse
    # dagster-dbt's own fresh target directory (transforms/target/<step>-<run>-<random>), named
    # here so the kept parse can be put in before dbt starts.
    target_path = dbt_project.project_dir / dbt._get_unique_target_path(context=context)
    start_from_kept_parse(kept, target_path)
    with _environment(window_env(window)):  # unset for an unpartitioned step
        invocation = dbt.cli(args, context=context, raise_on_error=False, target_path=target_path)
    # Hold the events until dbt has exited: DuckDB admits one process at a time, so row counts
    # and date ranges can only be read once dbt has released the file.
    events = list(invocation.stream())
    relations = _relations_by_asset_key()
    with connect_read_only(warehouse_path()) as con:
        for event in events:
            key = getattr(event, "asset_key", None) or (
                context.asset_key_for_output(event.output_name)
                if isinstance(event, dg.Output)
                else None
            )
            if isinstance(event, (dg.Output, dg.AssetMaterialization)) and key in relations:
                stats = relation_stats(con, *relations[key])
                extra = {"dagster/row_count": stats["row_count"]} if "row_count" in stats else {}
                if "date_range" in stats:
                    extra["date_range"] = stats["date_range"]
                event = event.with_metadata({**event.metadata, **extra})
            yield event
    if invocation.is_successful():
        record_built_from(models)
        keep_partial_parse(Path(invocation.target_path), kept)
    else:
        raise dg.Failure(
            description="dbt build failed: see the failed models and checks above "
            f"and {dbt_project.project_dir / 'target' / 'run_results.json'}",
        )


_TRANSLATOR = WarehouseTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    exclude=_DAILY_PARTITIONED,
    dagster_dbt_translator=_TRANSLATOR,
    pool=DUCKDB_WRITER_POOL,
)
def warehouse_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, config: TransformsConfig
) -> Iterator[Any]:
    """Whole-history models: staging, sessions, splits and sequences (tables rebuilt on every
    run) and the reward stats (incremental by changed dates)."""
    yield from _dbt_build(context, dbt, config)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=_DAILY_PARTITIONED,
    dagster_dbt_translator=_TRANSLATOR,
    partitions_def=watch_log_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=DUCKDB_WRITER_POOL,
)
def warehouse_daily_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, config: TransformsConfig
) -> Iterator[Any]:
    """The daily-partitioned models: a partitioned run rewrites its days (and any changed date,
    so the tables always equal a full refresh); without a partition, every changed date."""
    yield from _dbt_build(context, dbt, config, partition_days(context))
