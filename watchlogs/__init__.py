"""Producers of raw watch logs: the synthetic world (with its oracle) and MovieLens files."""

from watchlogs.config import SimulatorConfig
from watchlogs.movielens import load_movielens
from watchlogs.oracle import Oracle
from watchlogs.partitioned import read_watch_logs, write_daily_partitions
from watchlogs.simulator import SimulationResult, simulate

__all__ = [
    "Oracle",
    "SimulationResult",
    "SimulatorConfig",
    "load_movielens",
    "read_watch_logs",
    "simulate",
    "write_daily_partitions",
]
