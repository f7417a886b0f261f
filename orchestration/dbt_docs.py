"""Build the dbt docs site (lineage graph, model and column docs) into the data directory.

    python -m orchestration.dbt_docs          # `make docs`

`dbt docs generate --static` against the warehouse a run built: the catalog (column types, row
counts) comes from the DuckDB file, the descriptions from the models' yml. It writes
`<data>/dbt_docs/static_index.html` (one self-contained page: open it from disk) beside the usual
index.html, manifest.json and catalog.json that `dbt docs serve` serves.
"""

from __future__ import annotations

import subprocess
import sys

from common.layout import DataLayout
from common.paths import data_dir, warehouse_path
from orchestration.prepare import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_env

PORT = 8080


def build() -> int:
    site = DataLayout(data_dir()).dbt_docs
    if not warehouse_path().exists():
        print(f"no warehouse at {warehouse_path()}: run `make run` first", file=sys.stderr)
        return 1
    project = str(DBT_PROJECT_DIR)
    command = [DBT_EXECUTABLE, "docs", "generate", "--static", "--project-dir", project,
               "--profiles-dir", project, "--target-path", str(site)]  # fmt: skip
    done = subprocess.run(command, env=dbt_env(), capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
        return done.returncode
    serve = (
        f"{DBT_EXECUTABLE} docs serve --project-dir {project} --profiles-dir {project} "
        f"--target-path {site} --host 127.0.0.1 --port {PORT} --no-browser"
    )
    print(f"dbt docs site: {site}")
    print(f"  open offline: file://{site / 'static_index.html'}")
    print(f"  or serve it:  {serve}  (then http://127.0.0.1:{PORT})")
    return 0


if __name__ == "__main__":
    sys.exit(build())
