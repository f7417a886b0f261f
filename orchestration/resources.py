"""Resources in one place: the dbt project/CLI and the GX context. Building them runs nothing:
the dbt manifest is written beforehand by `orchestration.prepare` (`make prepare`)."""

from __future__ import annotations

import importlib.metadata
import os
from functools import cached_property

from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from orchestration.gx_resource import GXResource
from orchestration.prepare import DBT_EXECUTABLE, DBT_PROJECT_DIR, DBT_TARGET_DIR

# Only one process may write the DuckDB warehouse file: every writer joins this pool (limit 1 in
# dagster.yaml) so runs and steps that write it are serialized.
DUCKDB_WRITER_POOL = "duckdb_writer"

dbt_project = DbtProject(
    project_dir=DBT_PROJECT_DIR,
    profiles_dir=DBT_PROJECT_DIR,
    target_path=DBT_TARGET_DIR.relative_to(DBT_PROJECT_DIR),
)


class WarehouseDbtResource(DbtCliResource):
    """dagster-dbt's CLI resource without two costs paid on every run, each outside dbt's work:

    - `_cli_version`: dagster-dbt runs `dbt --version` once per run (a Python process importing
      dbt: about 2.5 s). The executable is this environment's dbt (`DBT_EXECUTABLE`), so its
      version is the installed dbt-core package's.
    - `_initialize_dbt_core_adapter`: before every invocation dagster-dbt opens a dbt adapter in
      this process (loading dbt's profile, project and macros: about 3 s), for one use:
      `fetch_row_counts` and `fetch_column_metadata` on the event stream. The warehouse assets
      call neither; they read row counts and date ranges themselves once dbt has exited
      (`relation_stats`). Without an adapter the invocation runs dbt exactly as before.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):  # noqa: ANN001, ANN202 (dagster-dbt's hook)
        return None


# The dbt profile target (profiles.yml): `dev` (DuckDB) unless ASFT_DBT_TARGET names another.
dbt_resource = WarehouseDbtResource(
    project_dir=dbt_project,
    dbt_executable=DBT_EXECUTABLE,
    target=os.environ.get("ASFT_DBT_TARGET") or None,
)

RESOURCES = {"dbt": dbt_resource, "gx": GXResource()}
