"""Resources in one place: the dbt project/CLI and the GX context. Building them runs nothing:
the dbt manifest is written beforehand by `orchestration.prepare` (`make prepare`)."""

from __future__ import annotations

import os

from dagster_dbt import DbtCliResource, DbtProject

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
# The dbt profile target (profiles.yml): `dev` (DuckDB) unless ASFT_DBT_TARGET names another.
dbt_resource = DbtCliResource(
    project_dir=dbt_project,
    dbt_executable=DBT_EXECUTABLE,
    target=os.environ.get("ASFT_DBT_TARGET") or None,
)

RESOURCES = {"dbt": dbt_resource, "gx": GXResource()}
