"""How the main job's cost grows with the data: the whole default job on simulator worlds of
0.3M, 1M, 3M and 10M events, each stage's wall seconds, CPU seconds and peak RSS, and each stage's
growth exponent between sizes (the log-log slope of its cost against events).

    python -m benchmarks.scaling                         # every size, then the table and plot
    python -m benchmarks.scaling --sizes 0.3M,1M         # some sizes (results merge by size)
    python -m benchmarks.scaling --report                # the table and plot from the JSON only

Each size is one real `python -m orchestration.launch --job main_job` (in-process executor: its
steps run one after another) in its own data directory and Dagster instance. Users grow with the
events as in the default world (6,000 per 1M events) and titles as events^0.63 (3,500 at 1M,
7,000 at 3M). A sampler polls the launcher's process tree (dbt's subprocess included) every
0.25 s for CPU seconds and resident memory; the run's event log says which step ran when, and a
step belongs to the stage its asset is in (STAGE_OF_STEP). Peak RSS is the largest sampled sum
over the tree while the stage's steps ran: a spike shorter than the sampling interval is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import yaml

from benchmarks.process_stats import uptime

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "scaling.json"
FIGURE = ROOT / "docs" / "figures" / "scaling.png"
SIZES = ("0.3M", "1M", "3M", "10M")
USERS_PER_EVENT = 6_000 / 1_000_000
ITEMS_AT_1M, ITEMS_EXPONENT = 3_500, math.log(2) / math.log(3)  # 3.5k titles at 1M, 7k at 3M
# A step's stage, by the first prefix its step key starts with (asset checks start with their
# asset's key); the order is the job's.
STAGE_OF_STEP: tuple[tuple[str, str], ...] = (
    ("raw_watch_logs", "ingest"),
    ("warehouse_", "dbt"),
    ("staging__", "dbt"),
    ("marts__", "dbt"),
    ("intermediate__", "dbt"),
    ("feature_", "features"),
    ("online_features", "features"),
    ("pretrained_policy", "pretrain"),
    ("reward_model", "reward"),
    ("advantages", "advantages"),
    ("posttrained_policies", "posttrain"),
    ("batch_recommendations", "serving"),
    ("data_", "reports"),
)
STAGES = tuple(dict.fromkeys(stage for _, stage in STAGE_OF_STEP))
SAMPLE_S = 0.25


def events_of(label: str) -> int:
    """'0.3M' -> 300,000 (any size in millions, e.g. 0.05M for a smoke run)."""
    if not label.endswith("M"):
        raise ValueError(f"a size is millions of events ending in M, e.g. 0.3M, got {label!r}")
    return round(float(label[:-1]) * 1_000_000)


def world(events: int) -> dict[str, int]:
    """The simulator world of `events` events, grown from the default one."""
    scale = events / 1_000_000
    return {
        "n_events": events,
        "n_users": round(USERS_PER_EVENT * events),
        "n_items": round(ITEMS_AT_1M * scale**ITEMS_EXPONENT),
    }


def stage_of(step_key: str) -> str:
    return next((stage for prefix, stage in STAGE_OF_STEP if step_key.startswith(prefix)), "other")


class TreeSampler(threading.Thread):
    """(seconds since start, CPU seconds, RSS MB) of a process and its descendants, polled."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.samples: list[tuple[float, float, float]] = []
        self.done = threading.Event()

    def sample(self) -> tuple[float, float] | None:
        try:
            tree = [self.root, *self.root.children(recursive=True)]
            t = self.root.cpu_times()
            cpu = t.children_user + t.children_system  # reaped children (dbt's runs)
        except psutil.NoSuchProcess:
            return None
        rss = 0.0
        for proc in tree:
            try:
                times, mem = proc.cpu_times(), proc.memory_info()
            except psutil.NoSuchProcess:
                continue
            cpu += times.user + times.system
            rss += mem.rss / 2**20
        return cpu, rss

    def run(self) -> None:
        while not self.done.is_set():
            point = self.sample()
            if point:
                self.samples.append((time.time(), *point))
            self.done.wait(SAMPLE_S)


def step_intervals(dagster_home: Path) -> list[tuple[str, float, float]]:
    """(step key, start, end) epoch seconds of every step of the instance's one run."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        (run,) = instance.get_runs(limit=1)
        starts: dict[str, float] = {}
        out = []
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            if event is None or not event.step_key:
                continue
            if event.event_type_value == "STEP_START":
                starts[event.step_key] = record.timestamp
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                out.append((event.step_key, starts[event.step_key], record.timestamp))
    return out


def per_stage(steps, samples) -> dict[str, dict[str, float]]:
    """Each stage's wall seconds (its steps' durations), CPU seconds (the tree's CPU counter
    across those intervals) and peak RSS (the largest sample inside them)."""

    def cpu_at(t: float) -> float:  # the last sample at or before t (the counter only grows)
        before = [c for ts, c, _ in samples if ts <= t]
        return before[-1] if before else 0.0

    stages: dict[str, dict[str, float]] = {}
    for key, start, end in steps:
        row = stages.setdefault(stage_of(key), {"wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mb": 0.0})
        row["wall_s"] += end - start
        row["cpu_s"] += max(0.0, cpu_at(end) - cpu_at(start))
        inside = [rss for ts, _, rss in samples if start <= ts <= end]
        row["peak_rss_mb"] = max(row["peak_rss_mb"], *inside, 0.0)
    return stages


def run_size(label: str, work: Path, keep: bool, job: str = "main_job") -> dict:
    events = events_of(label)
    data = work / label / "data"
    shutil.rmtree(work / label, ignore_errors=True)
    data.mkdir(parents=True)
    config = work / label / "run.yaml"
    config.write_text(yaml.safe_dump({"ops": {"raw_watch_logs": {"config": world(events)}}}))
    env = os.environ | {
        "ASFT_DATA_DIR": str(data),
        "DAGSTER_HOME": str(data / "dagster_home"),
        "PYTHONPATH": str(ROOT),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DAGSTER_DISABLE_TELEMETRY": "true",
    }
    command = [sys.executable, "-m", "orchestration.launch", "--job", job,
               "--config", str(config)]  # fmt: skip
    load_before, started = uptime(), time.time()
    with open(work / label / "console.log", "w") as console:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=console, stderr=console)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        code = proc.wait()
        sampler.done.set()
        sampler.join()
    wall = time.time() - started
    samples = sampler.samples
    steps = step_intervals(data / "dagster_home")
    result = {
        "size": label,
        "job": job,
        "world": world(events),
        "exit_code": code,
        "wall_s": wall,
        "cpu_s": samples[-1][1] if samples else None,
        "peak_rss_mb": max((rss for *_, rss in samples), default=None),
        "stages": per_stage(steps, samples),
        "load_before": load_before,
        "load_after": uptime(),
        "data_dir_mb": sum(f.stat().st_size for f in data.rglob("*") if f.is_file()) / 2**20,
    }
    if not keep and code == 0:
        shutil.rmtree(work / label, ignore_errors=True)
    return result


def exponents(results: dict[str, dict], metric: str) -> dict[str, dict[str, float]]:
    """Per stage, the log-log slope of `metric` between consecutive sizes present, and from the
    default world's 1M to the largest (the issue's 1M -> 10M bound)."""
    out: dict[str, dict[str, float]] = {}
    for a, b in _pairs(_sizes(results)):
        ratio = math.log(events_of(b) / events_of(a))
        for stage in (*STAGES, "job"):
            va, vb = (_value(results[x], stage, metric) for x in (a, b))
            if va and vb:
                out.setdefault(stage, {})[f"{a}->{b}"] = math.log(vb / va) / ratio
    return out


def _sizes(results: dict[str, dict]) -> list[str]:
    return sorted(results, key=events_of)


def _pairs(labels: list[str]) -> list[tuple[str, str]]:
    pairs = list(zip(labels, labels[1:], strict=False))
    if "1M" in labels and ("1M", labels[-1]) not in pairs and labels[-1] != "1M":
        pairs.append(("1M", labels[-1]))
    return pairs


def _value(result: dict, stage: str, metric: str) -> float | None:
    if stage == "job":
        return result.get(metric)
    return result["stages"].get(stage, {}).get(metric)


def table(results: dict[str, dict]) -> str:
    labels = _sizes(results)
    head = (
        "| stage | "
        + " | ".join(f"{s} wall s / CPU s / peak GB" for s in labels)
        + " | exponent wall (CPU) "
        + ", ".join(f"{a}->{b}" for a, b in _pairs(labels))
        + " |"
    )
    lines = [head, "|" + " --- |" * (len(labels) + 2)]
    wall, cpu = exponents(results, "wall_s"), exponents(results, "cpu_s")
    for stage in (*STAGES, "job"):
        cells = []
        for s in labels:
            w, c, m = (_value(results[s], stage, k) for k in ("wall_s", "cpu_s", "peak_rss_mb"))
            cells.append("-" if w is None else f"{w:,.0f} / {c:,.0f} / {m / 1024:.2f}")
        nan = float("nan")
        slopes = ", ".join(
            f"{wall.get(stage, {}).get(k, nan):.2f} ({cpu.get(stage, {}).get(k, nan):.2f})"
            for k in (f"{a}->{b}" for a, b in _pairs(labels))
        )
        lines.append(f"| {stage} | " + " | ".join(cells) + f" | {slopes} |")
    worlds = ", ".join(
        f"{s}: {results[s]['world']['n_users']:,} users, {results[s]['world']['n_items']:,} titles"
        for s in labels
    )
    return "\n".join(lines) + f"\n\nWorlds: {worlds}."


def plot(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = _sizes(results)
    x = [events_of(s) for s in labels]
    fig, (ax_wall, ax_mem) = plt.subplots(1, 2, figsize=(11, 4.5))
    for stage in (*STAGES, "job"):
        for ax, metric in ((ax_wall, "cpu_s"), (ax_mem, "peak_rss_mb")):
            ys = [_value(results[s], stage, metric) for s in labels]
            pts = [(a, b) for a, b in zip(x, ys, strict=True) if b]
            if pts:
                style = {"lw": 2.5, "color": "black"} if stage == "job" else {}
                ax.plot(*zip(*pts, strict=True), marker="o", label=stage, **style)
    ref = [x[0], x[-1]]
    base = _value(results[labels[0]], "job", "cpu_s") or 1.0
    ax_wall.plot(ref, [base, base * x[-1] / x[0]], ls="--", color="grey", label="linear")
    for ax, title in ((ax_wall, "CPU seconds"), (ax_mem, "peak RSS (MB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("events")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    ax_wall.legend(fontsize=7, ncol=2)
    fig.suptitle("main_job cost by stage against world size (python -m benchmarks.scaling)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scaling",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sizes", default=",".join(SIZES), help="comma-separated: " + ", ".join(SIZES)
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/asft-scaling"),
        help="where each size's data directory is built (deleted after a success)",
    )
    parser.add_argument("--json", type=Path, default=OUT, help="the results file (merged by size)")
    parser.add_argument("--figure", type=Path, default=FIGURE, help="the log-log plot")
    parser.add_argument(
        "--job", default="main_job", help="the job (daily_refresh_job: the data stages alone)"
    )
    parser.add_argument("--keep", action="store_true", help="keep each size's data directory")
    parser.add_argument("--report", action="store_true", help="only print the table and plot")
    args = parser.parse_args(argv)
    results = json.loads(args.json.read_text()) if args.json.exists() else {}
    if not args.report:
        for label in args.sizes.split(","):
            print(f"scaling: {label} events, {world(events_of(label))} ({uptime()})", flush=True)
            results[label] = run_size(label, args.work, args.keep, args.job)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2) + "\n")
            r = results[label]
            print(f"scaling: {label} exit {r['exit_code']} in {r['wall_s']:,.0f} s, peak "
                  f"{r['peak_rss_mb'] / 1024:.2f} GB", flush=True)  # fmt: skip
    print(table(results))
    plot(results, args.figure)
    print(f"plot: {args.figure}")
    return 0 if all(r["exit_code"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
