"""What a benchmark process measures of itself and of the machine: peak and current RSS, CPU
seconds, how busy the whole machine was (it is shared), and the load average."""

from __future__ import annotations

import os
import resource
import subprocess


def proc_status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise KeyError(field)


def peak_rss_mb() -> float:
    # VmHWM, not getrusage's ru_maxrss: on Linux a child's ru_maxrss starts at the peak RSS of the
    # parent it was forked from (kept across exec), so it would charge the driver's data
    # generation to the worker. VmHWM is the peak of this process image alone.
    return proc_status_mb("VmHWM")


def rss_now_mb() -> float:
    return proc_status_mb("VmRSS")


def cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has been busy (all processes, incl. steal), from /proc/stat."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def memory(prefix: str = "") -> dict[str, float]:
    return {
        f"{prefix}peak_rss_mb": peak_rss_mb(),
        f"{prefix}rss_mb": rss_now_mb(),
        f"{prefix}ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
