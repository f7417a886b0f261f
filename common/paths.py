"""The data directory and accessors of its layout (`common/layout.py` names every path).

Everything a run writes lives under one data directory: ASFT_DATA_DIR, default `data/`.
"""

from __future__ import annotations

import os
from pathlib import Path

from common.layout import DataLayout

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR_ENV = "ASFT_DATA_DIR"
WAREHOUSE_PATH_ENV = "ASFT_WAREHOUSE_PATH"


def data_dir() -> Path:
    """The run's data directory, absolute; created on first use."""
    raw = os.environ.get(DATA_DIR_ENV)
    path = Path(raw) if raw else PROJECT_ROOT / "data"
    if not path.is_absolute():
        path = PROJECT_ROOT / path
    path.mkdir(parents=True, exist_ok=True)
    return path


def layout(root: Path | None = None) -> DataLayout:
    """The layout of `root`, or of the configured data directory."""
    return DataLayout(root or data_dir())


def raw_watch_logs_dir(root: Path | None = None) -> Path:
    return layout(root).raw_watch_logs


def oracle_dir(root: Path | None = None) -> Path:
    return layout(root).oracle


def warehouse_path(root: Path | None = None) -> Path:
    """The DuckDB warehouse: ASFT_WAREHOUSE_PATH if set (and no root given), else <data>/."""
    override = os.environ.get(WAREHOUSE_PATH_ENV)
    if root is None and override:
        return Path(override).resolve()
    return layout(root).warehouse


def pretrained_policy_dir(root: Path | None = None) -> Path:
    return layout(root).pretrained_policy


def reports_dir(root: Path | None = None) -> Path:
    path = layout(root).reports
    path.mkdir(parents=True, exist_ok=True)
    return path
