"""The console of a run is quiet: a tiny real run through `orchestration.launch` (real Dagster,
dbt, DuckDB; a subprocess, as `make run` starts it) prints one progress line per asset and no
DEBUG or dbt test lines, while its log file and the instance keep the whole event log. The
closing summary is aligned tables within the terminal's width."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from unittest import mock

import dagster as dg
import pytest
import yaml

from common.reports import WIDTH, summary_text, write_report
from orchestration.console import headline, progress_line
from tests.test_orchestration import run_config

ROOT = Path(__file__).resolve().parent.parent


def test_headline_is_the_first_known_metadata_entry():
    assert headline({"dagster/row_count": dg.MetadataValue.int(1500)}) == "1,500 rows"
    assert headline({"dagster/row_count": 3, "test_ndcg@10": 0.08439}) == "test ndcg@10 0.0844"
    assert headline({"feature_views": ["a", "b", "c"]}) == "3 feature views"
    assert headline({"headline": "its own words", "sessions": 5}) == "its own words"
    assert headline({"path": "/x"}) == ""
    line = progress_line(0.0, "asset", "marts/user_sequences", 0.25, "40 rows")
    assert "marts/user_sequences" in line and "0.2s" in line and line.endswith("40 rows")
    assert len(progress_line(0.0, "asset", "x" * 200, 1.0, "y" * 200)) <= 100


def test_the_summary_is_aligned_tables_per_stage(tmp_path):
    policy = {"ndcg@10": {"mean": 0.1125, "ci95": 0.011}, "kl": {"mean": 0.06, "ci95": 0.1}}
    write_report(
        "posttrain",
        {
            "dataset": "simulator",
            "protocol": "a long paragraph that the summary leaves to the JSON and Markdown",
            "test": {"simulator": {"pretrained": policy, "bc": policy, "asft@beta=1": policy}},
            "champion": {"label": None, "registered": False, "reason": "r" * 150},
        },
        root=tmp_path,
    )
    write_report("data", {"events": 1500, "users": 40, "first_event": "2025-01-01T00:21:07Z"},
                 root=tmp_path)  # fmt: skip
    text = summary_text(tmp_path)
    lines = text.splitlines()
    assert all(len(line) <= WIDTH for line in lines)
    assert "protocol" not in text and "a long paragraph" not in text
    header = next(line for line in lines if "ndcg@10" in line)
    rows = [line for line in lines if line.lstrip().startswith(("pretrained", "bc ", "asft@"))]
    assert len(rows) == 3 and all("0.1125 ± 0.011" in row for row in rows)
    # aligned: every row's ndcg cell ends where the header's column ends
    end = header.index("ndcg@10") + len("ndcg@10")
    assert all(row.index("0.1125 ± 0.011") + len("0.1125 ± 0.011") == end for row in rows)
    assert any(line.strip().startswith("events") for line in lines)
    assert "2025-01-01 00:21" in text


@pytest.fixture(scope="module")
def quiet_run(tmp_path_factory):
    """`python -m orchestration.launch` on tiny data, in its own data directory and instance."""
    tmp = tmp_path_factory.mktemp("quiet-run")
    config = tmp / "tiny.yaml"
    config.write_text(yaml.safe_dump(run_config(seed=1)))
    data = tmp / "data"
    env = {**os.environ, "ASFT_DATA_DIR": str(data), "DAGSTER_HOME": str(data / "dagster_home"),
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    command = [sys.executable, "-m", "orchestration.launch", "--job", "main_job",
               "--config", str(config), "--summary"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    with (
        mock.patch.dict(os.environ, {"DAGSTER_HOME": env["DAGSTER_HOME"]}),  # dagster.yaml reads it
        dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance,
    ):
        (run,) = instance.get_runs()
        records = instance.all_logs(run.run_id)
        materialized = [
            r.dagster_event.event_specific_data.materialization.asset_key.to_user_string()
            for r in records
            if r.dagster_event and r.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
        ]
        kinds = Counter(r.dagster_event.event_type_value for r in records if r.dagster_event)
    return done, materialized, kinds


def test_the_console_has_one_line_per_asset_and_nothing_else(quiet_run):
    done, materialized, _ = quiet_run
    console = done.stdout + done.stderr
    assert done.returncode == 0, console[-3000:]
    lines = console.splitlines()
    assert len(materialized) >= 20
    for key in materialized:
        mine = [line for line in lines if re.search(rf"\basset\s+{re.escape(key)}\s", line)]
        assert len(mine) == 1, (key, mine)
        assert re.search(r"\d+\.\ds", mine[0]), mine[0]  # its seconds
    assert "DEBUG" not in console
    assert "STEP_START" not in console and "ASSET_MATERIALIZATION" not in console
    assert not re.search(r"\d+ of \d+ (START|PASS|OK)", console)  # dbt's per-test lines
    assert "Warning" not in console
    assert any(line.startswith("data ") for line in lines)  # the summary's stage blocks
    assert len(lines) <= 150
    assert lines[-3].startswith("main_job succeeded")


def test_the_log_file_holds_the_full_event_log(quiet_run):
    done, _, kinds = quiet_run
    log = Path(done.stdout.splitlines()[-2].removeprefix("full event log: "))
    assert log.is_file() and log.parent.name == "logs"
    text = log.read_text()
    assert " - DEBUG - " in text and "RUN_START" in text and "RUN_SUCCESS" in text
    # each step's events, as many as the instance stored for the UI
    for kind in ("STEP_START", "STEP_SUCCESS", "ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION"):
        assert text.count(f" - {kind} - ") == kinds[kind] > 0, kind
    assert re.search(r"\d+ of \d+ PASS", text)  # dbt's per-test lines are here
