"""Asset metadata helpers shared by the stages."""

from __future__ import annotations

import base64
from pathlib import Path

import dagster as dg


def image(path: str | Path, title: str = "") -> dg.MetadataValue:
    """A PNG shown inline in the Dagster UI (Markdown with a data URI; the file stays on disk)."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{data})\n\n`{path}`")
