"""Sessionization, dbt/DuckDB vs pandas: events/s, wall seconds and peak RSS at 1M and 10M events.

    python -m benchmarks.sessionization
    python -m benchmarks.sessionization --sizes 1000000 10000000 --repeats 3

For each size a seeded synthetic event set is generated once (not timed) and written as the table
`staging.stg_watch_events` of a fresh DuckDB warehouse under a temporary ASFT_DATA_DIR and as a
Parquet file with the same columns. Then each contender runs in its own fresh subprocess, so its
peak RSS (VmHWM; see _peak_rss_mb) is its own, next to its RSS after imports:

- dbt_duckdb: `dbt run --select int_events_sessionized` through dbtRunner in the worker; wall = the
  invoke (dbt start-up, parse with a warm partial-parse file, the model, writing the table);
  `model_exec_s` = the model's own execution time from the run result. Importing dbt is not timed.
- pandas: read the needed Parquet columns, benchmarks.pandas_sessionize.sessionize, write the
  result to Parquet; wall = all three. With pandas 3.0's defaults (Arrow strings, copy-on-write);
  the ratios are against this one.
- pandas_object_strings: the same code with plain pandas 2.x defaults (object strings).

Every run also records its CPU seconds and how many cores other jobs kept busy meanwhile (the
machine is shared). The outputs are compared per event (joined on event_id). Writes
benchmarks/results/sessionization.json and prints a table; temporary files are removed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

REPO_ROOT = Path(__file__).resolve().parent.parent
TRANSFORMS_DIR = REPO_ROOT / "transforms"
OUT = Path(__file__).resolve().parent / "results" / "sessionization.json"
MODEL = "int_events_sessionized"
EVENTS_PER_USER = 170
N_DAYS = 120
EPOCH0_US = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()) * 1_000_000
DAY_US = 86_400 * 1_000_000
HOUR_S = 3_600.0

# Same columns and types as the dbt model staging.stg_watch_events.
STAGING_DDL = """
create schema if not exists staging;
create table staging.stg_watch_events (
    event_id varchar,
    user_id varchar,
    item_id varchar,
    event_ts timestamptz,
    event_date date,
    watch_seconds double,
    item_duration_seconds double,
    rating tinyint,
    autoplay boolean,
    source_file varchar
);
"""
DBT_ENV = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}


# ---------------------------------------------------------------- data


def synthetic_events(n_events: int, n_users: int, seed: int = 0) -> pa.Table:
    """Seeded watch events with the columns of staging.stg_watch_events, in event_ts order.

    Heavy-tailed events per user (lognormal weights); sessions of ~6 playbacks whose next title
    starts seconds to minutes after the previous playback ends; hours to days between sessions so
    each user's history spreads over the 120 days; ~3% unknown watch_seconds (the playback still
    took time, so those gaps look longer to the model); 0.1% events share their predecessor's
    timestamp (ordered by event_id then).
    """
    rng = np.random.default_rng(seed)
    n_users = max(1, min(n_users, n_events))
    weight = rng.lognormal(0.0, 1.0, n_users)
    weight = np.minimum(weight, 20 * weight.mean())  # the heaviest users still fit in 120 days
    per_user = 1 + rng.multinomial(n_events - n_users, weight / weight.sum())
    user = np.repeat(np.arange(n_users), per_user)
    first = np.r_[0, np.cumsum(per_user)[:-1]]

    n_items = max(1_000, n_events // 300)
    item_weight = 1.0 / np.arange(1, n_items + 1) ** 0.9
    item = rng.choice(n_items, n_events, p=item_weight / item_weight.sum())
    duration = np.round(rng.lognormal(np.log(30 * 60), 0.6, n_items))[item]
    played = np.round(duration * rng.beta(2.0, 1.5, n_events), 1)

    is_start = rng.random(n_events) < 1 / 6
    is_start[first] = True
    intra_gap = rng.lognormal(np.log(60.0), 1.0, n_events)  # median 1 min after playback end
    # Between sessions: at least an hour, plus a random share (exponential spacings) of the user's
    # free time, of which the user fills 60-100% of the 120 days, so no history overruns them.
    inter = is_start.copy()
    inter[first] = False
    busy = np.bincount(user, weights=played + intra_gap, minlength=n_users)
    n_inter = np.bincount(user, weights=inter, minlength=n_users)
    spare = np.maximum(N_DAYS * 86_400 - busy - n_inter * HOUR_S, 0.0)
    spacing = rng.exponential(1.0, n_events) * inter
    spacing_sum = np.maximum(np.bincount(user, weights=spacing, minlength=n_users), 1e-9)
    fill = rng.uniform(0.6, 1.0, n_users) * spare / spacing_sum
    inter_gap = HOUR_S + spacing * fill[user]
    # Step from the previous event of the same user: its playback plus the idle gap.
    step = np.where(is_start, inter_gap, intra_gap) + np.r_[0.0, played[:-1]]
    step[(rng.random(n_events) < 0.001) & ~is_start] = 0.0
    step[first] = 0.0
    elapsed = np.cumsum(step)
    elapsed -= np.repeat(elapsed[first], per_user)
    span = elapsed[np.r_[first[1:], n_events] - 1]
    offset = rng.random(n_users) * np.maximum(N_DAYS * 86_400 - span, 0.0)
    ts_ms = np.round((offset[user] + elapsed) * 1e3).astype(np.int64)  # millisecond log clock
    ts_us = EPOCH0_US + ts_ms * 1_000

    watch = pa.array(played, pa.float64(), mask=rng.random(n_events) < 0.03)
    rated = rng.random(n_events) < 0.05
    rating = pa.array(rng.integers(1, 6, n_events).astype(np.int8), pa.int8(), mask=~rated)
    autoplay = pa.array(rng.random(n_events) < 0.3, pa.bool_(), mask=rng.random(n_events) < 0.01)
    # Event ids unrelated to time or user, so the sort really has to order them.
    event_no = pa.array(rng.permutation(n_events))
    event_ts = pa.array(ts_us, pa.timestamp("us", tz="UTC"))
    event_date = pa.array((ts_us // DAY_US).astype(np.int32), pa.date32())

    table = pa.table(
        {
            "event_id": _prefixed("e", event_no),
            "user_id": _prefixed("u", pa.array(user)),
            "item_id": _prefixed("i", pa.array(item)),
            "event_ts": event_ts,
            "event_date": event_date,
            "watch_seconds": watch,
            "item_duration_seconds": pa.array(duration, pa.float64()),
            "rating": rating,
            "autoplay": autoplay,
            "source_file": pc.binary_join_element_wise(
                "raw/watch_logs/date=",
                pc.cast(event_date, pa.string()),
                "/part-0.parquet",
                "",
            ),
        }
    )
    # Staging order: like daily partitions read in date order.
    return table.take(pa.array(np.argsort(ts_us, kind="stable")))


def _prefixed(prefix: str, codes: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(codes, pa.string()), "")


def write_inputs(table: pa.Table, work: Path) -> None:
    """The staging table in a fresh warehouse and the same rows as Parquet (not timed)."""
    import duckdb
    import pyarrow.parquet as pq

    data_dir = work / "data"
    data_dir.mkdir(parents=True)
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(STAGING_DDL)
        con.register("events_arrow", table)
        con.execute("insert into staging.stg_watch_events select * from events_arrow")
        con.execute("checkpoint")
    finally:
        con.close()
    pq.write_table(table, work / "events.parquet")


# ---------------------------------------------------------------- workers (fresh subprocesses)


def _proc_status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise KeyError(field)


def _peak_rss_mb() -> float:
    # VmHWM, not getrusage's ru_maxrss: on Linux a child's ru_maxrss starts at the peak RSS of the
    # parent it was forked from (kept across exec), so it would charge the driver's data
    # generation to the worker. VmHWM is the peak of this process image alone.
    return _proc_status_mb("VmHWM")


def _rss_now_mb() -> float:
    return _proc_status_mb("VmRSS")


def _cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _busy_cpu_s() -> float:
    """CPU seconds the whole machine has been busy (all processes, incl. steal), from /proc/stat."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _memory(prefix: str = "") -> dict[str, float]:
    return {
        f"{prefix}peak_rss_mb": _peak_rss_mb(),
        f"{prefix}rss_mb": _rss_now_mb(),
        f"{prefix}ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _dbt_args(command: str, work: Path, args: argparse.Namespace) -> list[str]:
    dbt_args = [
        command,
        "--project-dir",
        str(args.dbt_project_dir),
        "--profiles-dir",
        str(args.dbt_project_dir),
        # target/ and logs/ in the temp dir: never touch the project's own partial-parse state.
        "--target-path",
        str(work / "dbt_target"),
        "--log-path",
        str(work / "dbt_logs"),
        "--quiet",
    ]
    if args.gap_minutes != 30:
        dbt_args += ["--vars", json.dumps({"session_gap_minutes": args.gap_minutes})]
    return dbt_args


def worker_dbt(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    os.environ.update(DBT_ENV, ASFT_DATA_DIR=str(work / "data"))
    t = time.perf_counter()
    from dbt.cli.main import dbtRunner

    import_s = time.perf_counter() - t
    baseline = _memory("baseline_")
    dbt_args = _dbt_args("run", work, args) + ["--select", MODEL]
    t, cpu = time.perf_counter(), _cpu_s()
    res = dbtRunner().invoke(dbt_args)
    wall, cpu = time.perf_counter() - t, _cpu_s() - cpu
    if not res.success:
        raise RuntimeError(f"dbt run failed: {res.exception or res.result}")
    (node,) = res.result.results
    phases = {x.name: (x.completed_at - x.started_at).total_seconds() for x in node.timing}
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "model_exec_s": node.execution_time,
        "model_phases_s": phases,
        "dbt_overhead_s": wall - node.execution_time,
        "import_s": import_s,
        **baseline,
        **_memory(),
    }


def worker_pandas(
    work: Path, args: argparse.Namespace, pandas3_defaults: bool = True
) -> dict[str, Any]:
    t = time.perf_counter()
    import pandas as pd

    if pandas3_defaults:
        # What pandas 3.0 does by default: Arrow-backed strings and copy-on-write. Sorting 10M
        # unique string event_ids takes half the time with them, and far less memory.
        pd.set_option("future.infer_string", True)
        pd.set_option("mode.copy_on_write", True)
    from benchmarks.pandas_sessionize import INPUT_COLUMNS, sessionize

    import_s = time.perf_counter() - t
    baseline = _memory("baseline_")
    kind = "pandas" if pandas3_defaults else "pandas_object_strings"
    t, cpu = time.perf_counter(), _cpu_s()
    events = pd.read_parquet(work / "events.parquet", columns=INPUT_COLUMNS)
    read_s = time.perf_counter() - t
    sessions = sessionize(events, args.gap_minutes)
    sessionize_s = time.perf_counter() - t - read_s
    sessions.to_parquet(work / f"{kind}_sessions.parquet", index=False)
    wall, cpu = time.perf_counter() - t, _cpu_s() - cpu
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "read_s": read_s,
        "sessionize_s": sessionize_s,
        "write_s": wall - read_s - sessionize_s,
        "import_s": import_s,
        **baseline,
        **_memory(),
        "dtypes": {col: str(dtype) for col, dtype in events.dtypes.items()},
    }


def worker_pandas_object_strings(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    return worker_pandas(work, args, pandas3_defaults=False)


WORKERS = {
    "dbt_duckdb": worker_dbt,
    "pandas": worker_pandas,  # the baseline of the ratios
    "pandas_object_strings": worker_pandas_object_strings,  # plain pandas 2.x defaults
}


def run_worker(kind: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One measurement in a fresh interpreter, with how busy the machine was meanwhile."""
    result_file = work / f"{kind}.result.json"
    cmd = [sys.executable, "-m", "benchmarks.sessionization", "--worker", kind]
    cmd += ["--work-dir", str(work), "--result-file", str(result_file)]
    cmd += ["--gap-minutes", str(args.gap_minutes), "--dbt-project-dir", str(args.dbt_project_dir)]
    load_before = os.getloadavg()[0]
    t, busy, own = time.perf_counter(), _busy_cpu_s(), _cpu_s(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, env=dict(os.environ, **DBT_ENV), capture_output=True, text=True
    )
    elapsed, busy = time.perf_counter() - t, _busy_cpu_s() - busy
    own = _cpu_s(resource.RUSAGE_CHILDREN) - own
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    result = json.loads(result_file.read_text())
    result["load1_before"], result["load1_after"] = load_before, os.getloadavg()[0]
    # The load average lags and counts blocked tasks; this is what other jobs actually took:
    # average cores busy with anything but this worker over its lifetime.
    result["other_jobs_cores"] = max(busy - own, 0.0) / elapsed
    return result


# ---------------------------------------------------------------- verification


def compare_outputs(work: Path, pandas_kind: str) -> dict[str, Any]:
    """Per-event agreement of the dbt table and a pandas contender's Parquet, joined on event_id."""
    import duckdb

    con = duckdb.connect(str(work / "data" / "warehouse.duckdb"), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        path = str(work / f"{pandas_kind}_sessions.parquet").replace("'", "''")
        con.execute(f"create temp view p as select * from read_parquet('{path}')")
        con.execute(f"create temp view d as select * from intermediate.{MODEL}")
        sides = {}
        for side in ("d", "p"):
            # The checksum is order-independent: a sum of per-event hashes of the assignment.
            rows, sessions, starts, checksum = con.sql(
                f"""select count(*), count(distinct session_id), count(*) filter (is_session_start),
                    sum(hash(event_id, session_index, position_in_session))::varchar
                from {side}"""
            ).fetchall()[0]
            sides[side] = {
                "rows": rows,
                "sessions": sessions,
                "session_starts": starts,
                "checksum": checksum,
            }
        names = ["unmatched", "user_or_ts", "user_event_index", "session", "position", "start"]
        # gap_seconds must be the very same double: both sides divide whole microseconds by 1e6.
        names += ["gap_seconds", "gap_seconds_max_abs_diff"]
        counts = con.sql(
            """select
                count(*) filter (d.event_id is null or p.event_id is null),
                count(*) filter (d.user_id <> p.user_id or d.event_ts <> p.event_ts),
                count(*) filter (d.user_event_index <> p.user_event_index),
                count(*) filter (
                    d.session_index <> p.session_index or d.session_id <> p.session_id
                ),
                count(*) filter (d.position_in_session <> p.position_in_session),
                count(*) filter (d.is_session_start <> p.is_session_start),
                count(*) filter (d.gap_seconds is distinct from p.gap_seconds),
                max(abs(d.gap_seconds - p.gap_seconds))
            from d full outer join p using (event_id)"""
        ).fetchall()[0]
    finally:
        con.close()
    mismatches = dict(zip(names, counts, strict=True))
    return {
        "dbt_duckdb": sides["d"],
        pandas_kind: sides["p"],
        "mismatched_events": mismatches,
        "agree": sides["d"] == sides["p"] and not any(mismatches.values()),
    }


# ---------------------------------------------------------------- driver


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time (the lower one for an even count), plus every wall."""
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["wall_s_runs"] = [r["wall_s"] for r in runs]
    chosen["peak_rss_mb_runs"] = [r["peak_rss_mb"] for r in runs]
    return chosen


def bench_size(n_events: int, n_users: int, args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"asft-sessionization-{n_events}-", dir=args.tmp_dir))
    try:
        # Generated and written in a child too, so this driver stays small (see _peak_rss_mb).
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "benchmarks.sessionization", "--worker", "setup"]
            + ["--work-dir", str(work), "--sizes", str(n_events), "--users", str(n_users)]
            + ["--seed", str(args.seed)],
            cwd=REPO_ROOT,
            check=True,
        )
        setup_s = time.perf_counter() - t
        # Untimed `dbt parse`: the timed run then starts like any repeated run in a working copy
        # (partial-parse file present), not like the first run after a clone.
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "dbt"), *_dbt_args("parse", work, args)],
            env=dict(os.environ, **DBT_ENV, ASFT_DATA_DIR=str(work / "data")),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"dbt parse failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in args.contenders}
        for _ in range(args.repeats):
            for kind in args.contenders:
                r = run_worker(kind, work, args)
                runs[kind].append(r)
                print(
                    f"  {n_events:>11,} {kind:<22} wall {r['wall_s']:7.2f} s  "
                    f"peak {r['peak_rss_mb']:6.0f} MB  others {r['other_jobs_cores']:.2f} cores",
                    flush=True,
                )
        res: dict[str, Any] = {"n_events": n_events, "n_users": n_users, "setup_s": setup_s}
        for kind, kind_runs in runs.items():
            res[kind] = _median_run(kind_runs)
            res[kind]["events_per_s"] = n_events / res[kind]["wall_s"]
            res[kind]["runs"] = kind_runs
        if "dbt_duckdb" in runs:
            res["ratios"] = {
                f"{what}_dbt_over_{kind}": value
                for kind in runs
                if kind != "dbt_duckdb"
                for what, value in _ratios(res["dbt_duckdb"], res[kind]).items()
            }
            if n_events <= args.verify_max_size:
                res["verification"] = {
                    kind: compare_outputs(work, kind) for kind in runs if kind != "dbt_duckdb"
                }
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _ratios(d: dict[str, Any], p: dict[str, Any]) -> dict[str, float]:
    return {
        "speed": d["events_per_s"] / p["events_per_s"],
        "peak_rss": d["peak_rss_mb"] / p["peak_rss_mb"],
        # Peak minus the process's RSS after imports: the memory the work itself added.
        "peak_rss_increment": (d["peak_rss_mb"] - d["baseline_rss_mb"])
        / (p["peak_rss_mb"] - p["baseline_rss_mb"]),
    }


def machine_info() -> dict[str, Any]:
    import dbt.version
    import duckdb
    import pandas as pd

    with duckdb.connect() as con:
        settings = con.sql(
            """select name, value from duckdb_settings()
            where name in ('threads', 'memory_limit', 'preserve_insertion_order')"""
        ).fetchall()
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "mem_total_mb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "dbt_core": dbt.version.__version__,
        "pandas": pd.__version__,
        "pyarrow": pa.__version__,
        "duckdb_defaults": dict(settings),
    }


def print_table(results: dict[str, dict[str, Any]]) -> None:
    print(
        "\n| events | contender | wall s | events/s | peak RSS MB (after imports) | model exec s "
        "| dbt speed / this | dbt peak / this | CPU s | other jobs' cores | load1 |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for size, res in results.items():
        for kind, r in res.items():
            if not isinstance(r, dict) or "wall_s" not in r:
                continue
            ratios = res.get("ratios", {})
            speed = ratios.get(f"speed_dbt_over_{kind}")
            peak = ratios.get(f"peak_rss_dbt_over_{kind}")
            print(
                f"| {int(size):,} | {kind} | {r['wall_s']:.2f} | {r['events_per_s']:,.0f} "
                f"| {r['peak_rss_mb']:,.0f} ({r['baseline_rss_mb']:,.0f}) "
                f"| {_fmt(r.get('model_exec_s'))} | {_fmt(speed)} | {_fmt(peak)} "
                f"| {r['cpu_s']:.1f} | {r['other_jobs_cores']:.2f} "
                f"| {r['load1_before']:.2f}->{r['load1_after']:.2f} |"
            )
        for kind, v in res.get("verification", {}).items():
            bad = {k: n for k, n in v["mismatched_events"].items() if n}
            print(
                f"|  | dbt vs {kind}: {'agree' if v['agree'] else 'DIFFER'} "
                f"| rows {v['dbt_duckdb']['rows']:,} | sessions {v['dbt_duckdb']['sessions']:,} "
                f"| checksum {'equal' if v['dbt_duckdb'] == v[kind] else 'DIFFERS'} "
                f"| mismatches {bad or 0} |  |  |  |  |  |"
            )


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument(
        "--users", type=int, nargs="+", help=f"users per size (default size / {EVENTS_PER_USER})"
    )
    p.add_argument("--contenders", nargs="+", choices=list(WORKERS), default=list(WORKERS))
    p.add_argument("--repeats", type=int, default=1, help="runs per contender; median reported")
    p.add_argument("--gap-minutes", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verify-max-size", type=int, default=10_000_000)
    p.add_argument("--tmp-dir", type=Path, help="parent of the temporary warehouses")
    p.add_argument(
        "--dbt-project-dir",
        type=Path,
        default=TRANSFORMS_DIR,
        help="dbt project and profiles dir (a modified copy, to try other settings)",
    )
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--worker", choices=[*WORKERS, "setup"], help=argparse.SUPPRESS)
    p.add_argument("--work-dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args(argv)

    if a.worker == "setup":
        write_inputs(synthetic_events(a.sizes[0], a.users[0], seed=a.seed), a.work_dir)
        return
    if a.worker:
        result = WORKERS[a.worker](a.work_dir, a)
        a.result_file.write_text(json.dumps(result))
        return

    users = a.users or [max(1, n // EVENTS_PER_USER) for n in a.sizes]
    if len(users) != len(a.sizes):
        p.error("--users needs one value per size")
    meta: dict[str, Any] = {
        "what": f"dbt run --select {MODEL} vs pandas (read Parquet, sessionize, write Parquet)",
        "command": " ".join(
            [Path(sys.executable).name, "-m", "benchmarks.sessionization"] + sys.argv[1:]
        ),
        "dbt_project_dir": str(a.dbt_project_dir),
        "machine": machine_info(),
        "load_average_before": os.getloadavg(),
        "uptime_before": _uptime(),
        "gap_minutes": a.gap_minutes,
        "repeats": a.repeats,
        "seed": a.seed,
    }
    results: dict[str, Any] = {}
    for n_events, n_users in zip(a.sizes, users, strict=True):
        results[str(n_events)] = bench_size(n_events, n_users, a)
    meta["load_average_after"] = os.getloadavg()
    meta["uptime_after"] = _uptime()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    # Top-level keys are the sizes; "meta" holds the machine, the load and the command.
    a.out.write_text(json.dumps({**results, "meta": meta}, indent=2) + "\n")
    print_table(results)
    print(f"uptime before: {meta['uptime_before']}\nuptime after:  {meta['uptime_after']}")
    print(f"wrote {a.out}")


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()
