"""Sessionization, dbt/DuckDB vs pandas: events/s, wall seconds and peak RSS at 1M and 10M events.

    python -m benchmarks.sessionization
    python -m benchmarks.sessionization --sizes 1000000 10000000 --repeats 3

For each size a seeded synthetic event set is generated once (not timed) and written as the table
`staging.stg_watch_events` of a fresh DuckDB warehouse under a temporary ASFT_DATA_DIR and as a
Parquet file with the same columns. Then each contender runs in its own fresh subprocess, so its
peak RSS (VmHWM; see peak_rss_mb) is its own, next to its RSS after imports:

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

import pyarrow as pa

from benchmarks.process_stats import busy_cpu_s, cpu_s, memory, uptime
from benchmarks.sessionization_check import compare_outputs
from benchmarks.synthetic_events import EVENTS_PER_USER, synthetic_events, write_inputs

REPO_ROOT = Path(__file__).resolve().parent.parent
TRANSFORMS_DIR = REPO_ROOT / "transforms"
OUT = Path(__file__).resolve().parent / "results" / "sessionization.json"
MODEL = "int_events_sessionized"
DBT_ENV = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}


# ---------------------------------------------------------------- workers (fresh subprocesses)


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
    baseline = memory("baseline_")
    dbt_args = _dbt_args("run", work, args) + ["--select", MODEL]
    t, cpu = time.perf_counter(), cpu_s()
    res = dbtRunner().invoke(dbt_args)
    wall, cpu = time.perf_counter() - t, cpu_s() - cpu
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
        **memory(),
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
    baseline = memory("baseline_")
    kind = "pandas" if pandas3_defaults else "pandas_object_strings"
    t, cpu = time.perf_counter(), cpu_s()
    events = pd.read_parquet(work / "events.parquet", columns=INPUT_COLUMNS)
    read_s = time.perf_counter() - t
    sessions = sessionize(events, args.gap_minutes)
    sessionize_s = time.perf_counter() - t - read_s
    sessions.to_parquet(work / f"{kind}_sessions.parquet", index=False)
    wall, cpu = time.perf_counter() - t, cpu_s() - cpu
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "read_s": read_s,
        "sessionize_s": sessionize_s,
        "write_s": wall - read_s - sessionize_s,
        "import_s": import_s,
        **baseline,
        **memory(),
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
    t, busy, own = time.perf_counter(), busy_cpu_s(), cpu_s(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, env=dict(os.environ, **DBT_ENV), capture_output=True, text=True
    )
    elapsed, busy = time.perf_counter() - t, busy_cpu_s() - busy
    own = cpu_s(resource.RUSAGE_CHILDREN) - own
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    result = json.loads(result_file.read_text())
    result["load1_before"], result["load1_after"] = load_before, os.getloadavg()[0]
    # The load average lags and counts blocked tasks; this is what other jobs actually took:
    # average cores busy with anything but this worker over its lifetime.
    result["other_jobs_cores"] = max(busy - own, 0.0) / elapsed
    return result


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
        # Generated and written in a child too, so this driver stays small (see peak_rss_mb).
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
                    kind: compare_outputs(work, kind, MODEL)
                    for kind in runs
                    if kind != "dbt_duckdb"
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
        "uptime_before": uptime(),
        "gap_minutes": a.gap_minutes,
        "repeats": a.repeats,
        "seed": a.seed,
    }
    results: dict[str, Any] = {}
    for n_events, n_users in zip(a.sizes, users, strict=True):
        results[str(n_events)] = bench_size(n_events, n_users, a)
    meta["load_average_after"] = os.getloadavg()
    meta["uptime_after"] = uptime()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    # Top-level keys are the sizes; "meta" holds the machine, the load and the command.
    a.out.write_text(json.dumps({**results, "meta": meta}, indent=2) + "\n")
    print_table(results)
    print(f"uptime before: {meta['uptime_before']}\nuptime after:  {meta['uptime_after']}")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
