"""Resources in one place: the dbt project/CLI and the data directory every stage writes under."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from common.paths import DATA_DIR_ENV, PROJECT_ROOT, data_dir

# dbt reads the data directory from the environment (profiles.yml, source locations); pin it to
# the absolute path here so dbt, Dagster and the Python stages always agree.
os.environ[DATA_DIR_ENV] = str(data_dir())

DBT_PROJECT_DIR = PROJECT_ROOT / "transforms"
# Only one process may write the DuckDB warehouse file: every writer joins this pool (limit 1 in
# dagster.yaml) so runs and steps that write it are serialized.
DUCKDB_WRITER_POOL = "duckdb_writer"

# dbt installs beside this interpreter; the venv need not be activated (no PATH lookup).
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
dbt_resource = DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)

if not dbt_project.manifest_path.exists():
    # A fresh clone has no manifest yet: parse once so the asset graph can be built.
    dbt_resource.cli(["parse"], target_path=dbt_project.target_path).wait()

RESOURCES = {"dbt": dbt_resource}
