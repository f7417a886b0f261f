"""The sample delivery in the repo is a valid landing file for the default world."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from validation.gate import run_gate
from watchlogs.config import SimulatorConfig
from watchlogs.ids import numbered_ids, padded_width
from watchlogs.sample_delivery import ROWS, SAMPLE
from watchlogs.schema import RAW_WATCH_LOG_SCHEMA


def test_the_sample_delivery_passes_the_raw_contract_against_the_default_catalogue(tmp_path):
    table = pq.read_table(SAMPLE)
    assert table.num_rows == ROWS
    assert [(f.name, f.type) for f in table.schema] == [
        (f.name, f.type) for f in RAW_WATCH_LOG_SCHEMA
    ]
    n = SimulatorConfig().n_items
    catalogue = set(numbered_ids("i", np.arange(n), padded_width(n - 1, 5)).to_pylist())
    gate = run_gate("raw_watch_logs", table, root=tmp_path, catalogue=catalogue)
    assert gate.success, gate.summary()
