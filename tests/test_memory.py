"""Memory a step freed goes back to the system before the next step of a job starts."""

from __future__ import annotations

import gc

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


def test_garbage_in_cycles_is_collected_only_above_the_bound():
    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector frees it
            self.payload = bytearray(1 << 20)

    gc.disable()  # the automatic collector must not do the test's work
    try:
        Node()
        assert not release_memory(collect_above_mb=float("inf"))
        assert any(type(o) is Node for o in gc.get_objects())
        assert release_memory(collect_above_mb=0)
        assert not any(type(o) is Node for o in gc.get_objects())
    finally:
        gc.enable()


def test_every_job_releases_memory_after_each_step():
    for job in JOBS:
        assert release_memory_hook in job.hooks, job.name
