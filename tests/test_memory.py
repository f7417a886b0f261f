"""Memory a step freed goes back to the system before the next step of a job starts."""

from __future__ import annotations

import numpy as np
import psutil

from common.memory import release_memory
from orchestration.defs.automation.jobs import JOBS, release_memory_hook


def test_release_memory_returns_a_freed_heap_to_the_system():
    rss = lambda: psutil.Process().memory_info().rss / 2**20  # noqa: E731
    before = rss()
    blocks = [np.ones(1000) for _ in range(50_000)]  # 8 KB each: glibc's heap, not mmap
    grown = rss()
    assert grown - before > 300
    last = blocks[-1]  # the heap's top stays in use: only a trim gives the rest back
    del blocks
    release_memory()
    assert rss() - before < (grown - before) / 4
    assert last.sum() == 1000


def test_every_job_releases_memory_after_each_step():
    for job in JOBS:
        assert release_memory_hook in job.hooks, job.name
