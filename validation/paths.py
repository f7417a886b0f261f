"""Where the landing ingestion and quarantine live under the data directory (no GX import)."""

from __future__ import annotations

from pathlib import Path

from common.paths import layout


def landing_dir(root: Path | None = None) -> Path:
    """Deliveries are dropped here: one Parquet file = one delivery."""
    return layout(root).landing


def ingested_dir(root: Path | None = None) -> Path:
    """Deliveries that became raw partitions are archived here."""
    return layout(root).ingested


def landing_result_path(root: Path | None = None) -> Path:
    """The last ingestion's outcome (JSON), read by the raw_watch_logs gate."""
    return layout(root).landing_result


def quarantine_dir(root: Path | None = None) -> Path:
    """files/ (rejected deliveries), held/ (held-back deliveries), rows/ (offending rows)."""
    return layout(root).quarantine
