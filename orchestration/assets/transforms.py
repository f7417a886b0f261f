"""The dbt project as Dagster assets: every model is an asset and every dbt test an asset check."""

import json
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from common.paths import data_dir, warehouse_path
from common.warehouse import connect_read_only, relation_stats
from orchestration.resources import DUCKDB_WRITER_POOL, dbt_project
from watchlogs.sources import read_fingerprint

# Which raw dataset the warehouse was last built from; a different one forces a full refresh.
_BUILT_FROM = "warehouse.built_from.json"


class WarehouseTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        folder = dbt_resource_props.get("fqn", ["", ""])[1:2]
        return (
            f"warehouse_{folder[0]}"
            if folder and dbt_resource_props["resource_type"] != "source"
            else None
        )


class TransformsConfig(dg.Config):
    full_refresh: bool = False  # rebuild incremental models from scratch


def _relations_by_asset_key() -> dict[dg.AssetKey, tuple[str, str]]:
    manifest = json.loads(dbt_project.manifest_path.read_text())
    translator = WarehouseTranslator()
    return {
        translator.get_asset_key(node): (node["schema"], node["alias"])
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "seed", "snapshot")
    }


def _needs_full_refresh(requested: bool) -> bool:
    built_from = data_dir() / _BUILT_FROM
    current = read_fingerprint(data_dir())
    previous = json.loads(built_from.read_text()) if built_from.exists() else None
    return requested or current is None or previous != current.get("fingerprint")


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=WarehouseTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
    ),
    pool=DUCKDB_WRITER_POOL,
)
def warehouse_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, config: TransformsConfig
) -> Iterator[Any]:
    full_refresh = _needs_full_refresh(config.full_refresh)
    args = ["build", "--full-refresh"] if full_refresh else ["build"]
    context.log.info(
        f"dbt {' '.join(args)} (full refresh: dataset changed or requested)"
        if full_refresh
        else "dbt build (incremental)"
    )
    invocation = dbt.cli(args, context=context, raise_on_error=False)
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
        fingerprint = read_fingerprint(data_dir()) or {}
        (data_dir() / _BUILT_FROM).write_text(json.dumps(fingerprint.get("fingerprint")))
    else:
        raise dg.Failure(
            description="dbt build failed: see the failed models and checks above "
            f"and {dbt_project.project_dir / 'target' / 'run_results.json'}",
        )
