"""Prepare the code location before Dagster loads it: `dbt parse` writes the manifest the dbt
assets are built from. `make prepare` (a prerequisite of install, run, test and dev) and the test
session (tests/conftest.py) run it; importing orchestration.definitions never does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from common.paths import DATA_DIR_ENV, PROJECT_ROOT, data_dir

DBT_PROJECT_DIR = PROJECT_ROOT / "transforms"
DBT_TARGET_DIR = DBT_PROJECT_DIR / "target"
DBT_MANIFEST = DBT_TARGET_DIR / "manifest.json"
# dbt installs beside this interpreter; the venv need not be activated (no PATH lookup).
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")


def dbt_env() -> dict[str, str]:
    """The environment dbt runs in: profiles.yml and the sources read the data directory from
    ASFT_DATA_DIR, pinned to the absolute path the Python stages use."""
    return {**os.environ, DATA_DIR_ENV: str(data_dir())}


def manifest_is_stale() -> bool:
    """No manifest (a fresh clone), or a model, macro or yml changed since it was written."""
    if not DBT_MANIFEST.exists():
        return True
    built = DBT_MANIFEST.stat().st_mtime
    folders = [DBT_PROJECT_DIR / f for f in ("models", "macros", "tests", "seeds", "snapshots")]
    sources = [p for f in folders for ext in ("*.sql", "*.yml") for p in f.rglob(ext)]
    sources.append(DBT_PROJECT_DIR / "dbt_project.yml")
    return any(p.stat().st_mtime > built for p in sources)


def prepare(force: bool = False) -> bool:
    """`dbt parse` when the manifest is missing or stale (or `force`); True when it ran."""
    if not (force or manifest_is_stale()):
        return False
    project = str(DBT_PROJECT_DIR)
    command = [DBT_EXECUTABLE, "parse", "--project-dir", project, "--profiles-dir", project,
               "--target-path", str(DBT_TARGET_DIR)]  # fmt: skip
    subprocess.run(command, env=dbt_env(), check=True, stdout=subprocess.DEVNULL)
    return True


if __name__ == "__main__":
    print("dbt manifest parsed" if prepare() else "dbt manifest up to date")
