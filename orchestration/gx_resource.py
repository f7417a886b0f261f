"""The Great Expectations resource: our own small wrapper around the file-backed GX context.

(dagster-ge needs GX < 1.) Gates and the quality report reach GX only through this resource;
the work is done by plain functions in validation/ (imported lazily: GX takes seconds to import).
"""

from pathlib import Path
from typing import Any

import dagster as dg

from common.paths import data_dir


class GXResource(dg.ConfigurableResource):
    """Runs validation gates against `<data>/gx/` and rebuilds its Data Docs."""

    data_root: str = ""  # empty: the run's data directory (ASFT_DATA_DIR)

    def root(self) -> Path:
        return Path(self.data_root) if self.data_root else data_dir()

    def gate(self, stage: str, data: Any, thresholds: Any = None, **view_args: Any) -> Any:
        """`validation.gate.run_gate` on this resource's data directory; returns a GateResult."""
        from validation.gate import run_gate

        return run_gate(stage, data, thresholds, root=self.root(), **view_args)

    def warehouse_gate(self, stage: str) -> Any:
        from validation.gate import run_warehouse_gate

        return run_warehouse_gate(stage, root=self.root())

    def build_docs(self) -> Path:
        from validation.context import build_data_docs

        return build_data_docs(self.root())

    def docs_index(self) -> Path:
        from validation.context import docs_index_path

        return docs_index_path(self.root())
