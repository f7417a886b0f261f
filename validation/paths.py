"""Where the landing ingestion and quarantine live under the data directory (no GX import)."""

from __future__ import annotations

from pathlib import Path

from common.paths import data_dir

RESULT_FILE = "last_ingest.json"


def landing_dir(root: Path | None = None) -> Path:
    """Deliveries are dropped here: one Parquet file = one delivery."""
    return (root or data_dir()) / "landing" / "watch_logs"


def ingested_dir(root: Path | None = None) -> Path:
    """Deliveries that became raw partitions are archived here."""
    return (root or data_dir()) / "landing" / "ingested"


def landing_result_path(root: Path | None = None) -> Path:
    """The last ingestion's outcome (JSON), read by the raw_watch_logs gate."""
    return (root or data_dir()) / "landing" / RESULT_FILE


def quarantine_dir(root: Path | None = None) -> Path:
    """files/ (rejected deliveries), held/ (held-back deliveries), rows/ (offending rows)."""
    return (root or data_dir()) / "quarantine"
