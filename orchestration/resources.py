"""Resources in one place: the dbt project/CLI and the data directory every stage writes under."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from common.paths import DATA_DIR_ENV, PROJECT_ROOT, data_dir
from orchestration.gx_resource import GXResource

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
# The dbt profile target (profiles.yml): `dev` (DuckDB) unless ASFT_DBT_TARGET names another.
dbt_resource = DbtCliResource(
    project_dir=dbt_project,
    dbt_executable=DBT_EXECUTABLE,
    target=os.environ.get("ASFT_DBT_TARGET") or None,
)


def _manifest_is_stale() -> bool:
    """No manifest (a fresh clone), or a model, macro or yml changed since it was written."""
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    folders = [DBT_PROJECT_DIR / f for f in ("models", "macros", "tests", "seeds", "snapshots")]
    sources = [p for f in folders for ext in ("*.sql", "*.yml") for p in f.rglob(ext)]
    sources.append(DBT_PROJECT_DIR / "dbt_project.yml")
    return any(p.stat().st_mtime > built for p in sources)


if _manifest_is_stale():
    # Parse so the asset graph matches the dbt project on disk.
    dbt_resource.cli(["parse"], target_path=dbt_project.target_path).wait()

RESOURCES = {"dbt": dbt_resource, "gx": GXResource()}
