"""What a run prints: one progress line per asset as it finishes; the full event log in a file.

Dagster's default `console` logger prints every event at DEBUG (about 1,200 lines for `make run`).
The definitions replace it with two Dagster loggers (`Definitions(loggers=LOGGERS)`, started by
the jobs' default config `LOGGER_CONFIG`; each is configured per run under `loggers:`):

- `console`: one line per materialized asset (its name, seconds, its headline figure from its
  metadata), one per asset check that runs as its own step (the GX gates), one per step's dbt
  tests (a count; each failure on its own line), and each failed step. Plain log messages are
  echoed only from `log_level` up (default ERROR).
- `run_log`: every event and message, DEBUG included, to `<data>/logs/<run id>.log` (or the file
  named by ASFT_RUN_LOG, which `orchestration.launch` sets).

Either way the instance (DAGSTER_HOME) stores the whole event log, so the UI shows everything.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import dagster as dg

from common.layout import DataLayout
from common.paths import data_dir

RUN_LOG_ENV = "ASFT_RUN_LOG"
# The format of the log file: Dagster's console format, without colours.
LOG_FORMAT = "%(asctime)s - %(levelname)s - %(message)s"
NAME_WIDTH = 48
LINE_WIDTH = 100

# An asset's headline: the first of these metadata entries it has, formatted with its value (a
# list or dict by its length). An asset names its own with a `headline` entry.
HEADLINE_KEYS: tuple[tuple[str, str], ...] = (
    ("headline", "{}"),
    ("test_ndcg@10", "test ndcg@10 {:.4f}"),
    ("rmse_reward_model", "test rmse {:.3f}"),
    ("champion", "champion: {}"),
    ("suites_passed", "{} GX suites passed"),
    ("expectations", "{} expectations"),
    ("sessions", "{:,} sessions"),
    ("feature_views", "{} feature views"),
    ("dagster/row_count", "{:,} rows"),
)

_stream: TextIO | None = None


def console_stream() -> TextIO:
    """Where progress lines go: the stream `use_console` set, else the current stderr."""
    return _stream or sys.stderr


@contextmanager
def use_console(stream: TextIO) -> Iterator[None]:
    """Send progress lines to `stream` (the launcher's terminal, when stdout goes to the log)."""
    global _stream
    previous, _stream = _stream, stream
    try:
        yield
    finally:
        _stream = previous


def headline(metadata: Mapping[str, Any]) -> str:
    """The figure that says how an asset came out, from its materialization metadata."""
    values = {key: getattr(entry, "value", entry) for key, entry in metadata.items()}
    for key, template in HEADLINE_KEYS:
        if key not in values:
            continue
        value = values[key]
        if isinstance(value, list | dict | tuple):
            value = len(value)
        try:
            return template.format(value)
        except (TypeError, ValueError):
            return f"{key}: {value}"
    return ""


def progress_line(clock: float, kind: str, name: str, seconds: float | None, note: str) -> str:
    """`hh:mm:ss  kind   name ... seconds  note`, at most LINE_WIDTH characters."""
    stamp = time.strftime("%H:%M:%S", time.localtime(clock))
    took = f"{seconds:7.1f}s" if seconds is not None else " " * 8
    line = f"{stamp}  {kind:<6} {name:<{NAME_WIDTH}} {took}  {note}".rstrip()
    return line if len(line) <= LINE_WIDTH else line[: LINE_WIDTH - 3] + "..."


def _event(record: logging.LogRecord) -> Any:
    meta = getattr(record, "dagster_meta", None) or {}
    return meta.get("dagster_event")


def _first_line(text: str) -> str:
    """The first non-blank line, without the module path of an exception's class."""
    line = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
    return re.sub(r"^(?:\w+\.)+(\w+:)", r"\1", line)


class ProgressHandler(logging.Handler):
    """Turns a run's events into progress lines (see the module docstring)."""

    def __init__(self, message_level: int) -> None:
        super().__init__(logging.DEBUG)
        self.message_level = message_level
        self.started: dict[str, float] = {}
        self.materialized: dict[str, int] = defaultdict(int)
        self.checks: dict[str, list[Any]] = defaultdict(list)

    def _print(self, *fields: Any) -> None:
        stream = console_stream()
        stream.write(progress_line(*fields) + "\n")
        stream.flush()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._emit(record)
        except Exception:  # a progress line must never fail the run
            self.handleError(record)

    def _emit(self, record: logging.LogRecord) -> None:
        event = _event(record)
        if event is None:
            if record.levelno >= self.message_level:
                meta = getattr(record, "dagster_meta", None) or {}
                text = _first_line(str(meta.get("orig_message") or record.getMessage()))
                self._print(
                    record.created, record.levelname, meta.get("step_key") or "", None, text
                )
            return
        kind, step = event.event_type_value, event.step_key or ""
        data = event.event_specific_data
        if kind == "STEP_START":
            self.started[step] = record.created
        elif kind == "ASSET_MATERIALIZATION":
            self._materialized(record.created, step, data.materialization)
        elif kind == "ASSET_CHECK_EVALUATION":
            self.checks[step].append(data)
            if not data.passed:
                name = f"{data.asset_key.to_user_string()}:{data.check_name}"
                self._print(record.created, "FAILED", name, None, data.description or "")
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            self._step_done(record.created, step, data if kind == "STEP_FAILURE" else None)

    def _materialized(self, clock: float, step: str, materialization: Any) -> None:
        self.materialized[step] += 1
        metadata = materialization.metadata
        # dbt reports each model's own time; other assets took the time since their step began.
        own = metadata.get("Execution Duration")
        seconds = own.value if own is not None else clock - self.started.get(step, clock)
        name = materialization.asset_key.to_user_string()
        self._print(clock, "asset", name, seconds, headline(metadata))

    def _step_done(self, clock: float, step: str, failure: Any) -> None:
        seconds = clock - self.started.get(step, clock)
        checks = self.checks.pop(step, [])
        if self.materialized.get(step) and checks:
            passed = sum(c.passed for c in checks)
            note = f"{passed} of {len(checks)} passed"
            self._print(clock, "tests", f"{step} (dbt tests)", None, note)
        else:
            for check in checks:
                name = f"{check.asset_key.to_user_string()}:{check.check_name}"
                figure = headline(check.metadata)
                note = ("passed" if check.passed else "FAILED") + (f", {figure}" if figure else "")
                self._print(clock, "check", name, seconds, note)
        if failure is not None:
            error = getattr(failure, "error", None)
            while getattr(error, "cause", None) is not None:  # the user code's own exception
                error = error.cause
            self._print(clock, "FAILED", step, seconds, _first_line(getattr(error, "message", "")))


_LEVEL = dg.Field(
    str,
    is_required=False,
    default_value="ERROR",
    description="Plain log messages (context.log) from this level up are echoed too; events are "
    "summarised as progress lines whatever it is (DEBUG, INFO, WARNING, ERROR).",
)


@dg.logger(
    config_schema={"log_level": _LEVEL},
    description="Progress on the console: one line per finished asset with its headline figure.",
)
def progress_console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    level = logging.getLevelName(str(init_context.logger_config["log_level"]).upper())
    logger = logging.Logger("asft.progress", level=logging.DEBUG)
    logger.addHandler(ProgressHandler(level if isinstance(level, int) else logging.ERROR))
    return logger


def run_log_path(run_id: str | None) -> Path:
    """ASFT_RUN_LOG when set (the launcher's file), else <data>/logs/<run id>.log."""
    named = os.environ.get(RUN_LOG_ENV)
    path = Path(named) if named else DataLayout(data_dir()).logs / f"{run_id or 'run'}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@dg.logger(
    config_schema={
        "path": dg.Field(
            str,
            is_required=False,
            description="The log file (default: ASFT_RUN_LOG, else <data>/logs/<run id>.log).",
        )
    },
    description="The run's full event log (every event, DEBUG included) as text in a file.",
)
def run_log_file_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    configured = init_context.logger_config.get("path")
    path = Path(configured) if configured else run_log_path(init_context.run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.Logger("asft.run_log", level=logging.DEBUG)
    logger.addHandler(handler)
    return logger


LOGGERS = {"console": progress_console_logger, "run_log": run_log_file_logger}
# Dagster starts a job's loggers only where its run config names them. `orchestration.launch`
# merges this into every run config; the jobs carry it as their default config, which Dagster
# applies to runs of the weekly job and to runs of one partition of the partitioned jobs.
LOGGER_CONFIG = {"loggers": {name: {} for name in LOGGERS}}


def with_loggers(run_config: Mapping[str, Any]) -> dict[str, Any]:
    """`run_config` with both loggers named (a logger's config given there wins)."""
    loggers = {**LOGGER_CONFIG["loggers"], **(run_config.get("loggers") or {})}
    return {**run_config, "loggers": loggers}
