"""Where a run writes: everything lives under one data directory (ASFT_DATA_DIR, default data/)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR_ENV = "ASFT_DATA_DIR"


def data_dir() -> Path:
    """The run's data directory, absolute; created on first use."""
    raw = os.environ.get(DATA_DIR_ENV)
    path = Path(raw) if raw else PROJECT_ROOT / "data"
    if not path.is_absolute():
        path = PROJECT_ROOT / path
    path.mkdir(parents=True, exist_ok=True)
    return path


def raw_watch_logs_dir(root: Path | None = None) -> Path:
    """Daily-partitioned Parquet: <data>/raw/watch_logs/date=YYYY-MM-DD/*.parquet."""
    return (root or data_dir()) / "raw" / "watch_logs"


def oracle_dir(root: Path | None = None) -> Path:
    """The simulator's hidden truth; read by evaluation only, never by training."""
    return (root or data_dir()) / "oracle"


WAREHOUSE_PATH_ENV = "ASFT_WAREHOUSE_PATH"


def warehouse_path(root: Path | None = None) -> Path:
    """The DuckDB warehouse: ASFT_WAREHOUSE_PATH if set (and no root given), else <data>/."""
    override = os.environ.get(WAREHOUSE_PATH_ENV)
    if root is None and override:
        return Path(override).resolve()
    return (root or data_dir()) / "warehouse.duckdb"


def pretrained_policy_dir(root: Path | None = None) -> Path:
    """The policy handed to post-training: best.pt, vocab.json, mlflow_run.json."""
    return (root or data_dir()) / "models" / "pretrained_policy"


def champion_dir(root: Path | None = None) -> Path:
    """The registered post-trained champion (what batch recommendations serve)."""
    return (root or data_dir()) / "models" / "champion"


def reports_dir(root: Path | None = None) -> Path:
    path = (root or data_dir()) / "reports"
    path.mkdir(parents=True, exist_ok=True)
    return path
