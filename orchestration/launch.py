"""Run a job from the command line, quietly: `python -m orchestration.launch --job main_job`.

`make run` calls this. The run is recorded in the instance (DAGSTER_HOME), so `make dev` shows
it with its whole event log. The console gets one progress line per finished asset
(`orchestration.console`) and, with --summary, the stage reports' tables; everything else the
process writes (the event log, dbt's per-test lines, the libraries' own output) goes to
`<data>/logs/<job>-<UTC time>.log`, named in the last line.

Dagster's `dagster job execute` is superseded by `dg launch` (dagster-dg-cli), which is not part
of this project's locked environment; this module uses the public Python API it stands on
(`execute_job` of a reconstructable job).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from common.layout import DataLayout
from common.paths import PROJECT_ROOT, data_dir
from orchestration.console import RUN_LOG_ENV, use_console, with_loggers

UI_ADDRESS = "http://127.0.0.1:3000"


def job_named(name: str) -> dg.JobDefinition:
    """The job `name` of the code locations: the main one, else the robustness study's (the
    reconstructor `execute_job` calls)."""
    from orchestration.definitions import defs, robustness_defs

    for location in (defs, robustness_defs):
        if any(job.name == name for job in location.jobs or ()):
            return location.resolve_job_def(name)
    return defs.resolve_job_def(name)


def ensure_dagster_home(layout: DataLayout) -> Path:
    """DAGSTER_HOME, default <data>/dagster_home, holding the project's dagster.yaml."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(layout.dagster_home)))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


@contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Everything written to file descriptors 1 and 2 (this process's and its children's) goes
    to `path` for the duration; restored afterwards."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (target, *saved):
            os.close(fd)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m orchestration.launch", description=__doc__)
    parser.add_argument("--job", default="main_job", help="the job to run (default main_job)")
    parser.add_argument(
        "-c", "--config", action="append", default=[], help="run config YAML (repeatable)"
    )
    parser.add_argument("--partition", help="the partition to run (a partitioned job's day)")
    parser.add_argument(
        "--select", help="only these assets of the job, comma-separated (e.g. posttrained_policies)"
    )
    parser.add_argument(
        "--summary", action="store_true", help="end with the stage reports' summary tables"
    )
    return parser.parse_args(argv)


def launch(args: argparse.Namespace, terminal) -> tuple[bool, str | None]:
    """Run the job with the terminal as the console; (success, run id)."""
    run_config = with_loggers(dg.config_from_files(args.config) if args.config else {})
    tags = {"dagster/partition": args.partition} if args.partition else None
    select = [dg.AssetKey.from_user_string(s.strip()) for s in (args.select or "").split(",")]
    job = dg.build_reconstructable_job("orchestration.launch", "job_named", (args.job,))
    with use_console(terminal), dg.DagsterInstance.get() as instance:
        run = dg.execute_job(job, instance, run_config=run_config, tags=tags,
                             asset_selection=select if args.select else None)  # fmt: skip
        with run as result:
            return result.success, result.run_id


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    layout = DataLayout(data_dir())
    ensure_dagster_home(layout)
    layout.logs.mkdir(parents=True, exist_ok=True)
    log = layout.logs / f"{args.job}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.log"
    os.environ[RUN_LOG_ENV] = str(log)
    terminal = os.fdopen(os.dup(1), "w", encoding="utf-8", errors="replace", buffering=1)
    print(f"{args.job}: one line per finished asset; the full log: {log}", file=terminal)
    start, error = time.monotonic(), None
    success, run_id = False, None
    with output_to(log):
        try:
            success, run_id = launch(args, terminal)
        except Exception as exc:  # e.g. run config refused at launch: say why, on the console
            traceback.print_exc()  # into the log
            error = exc
    seconds = time.monotonic() - start
    if error is not None:
        print(f"{args.job} was not launched: {type(error).__name__}: {error}", file=terminal)
    if args.summary and error is None:
        from common.reports import summary_text

        print("", summary_text(), sep="\n", file=terminal)
    outcome = "succeeded" if success else "FAILED"
    print(f"\n{args.job} {outcome} in {seconds:,.0f}s (run {run_id or '-'})", file=terminal)
    print(f"full event log: {log}", file=terminal)
    if run_id:
        print(f"in the UI (make dev): {UI_ADDRESS}/runs/{run_id}", file=terminal)
    terminal.close()
    return 0 if success else 1


if __name__ == "__main__":
    sys.exit(main())
