"""Give memory a finished step no longer uses back to the operating system.

The main job runs its steps one after another in one process (the in-process executor), so
what a step frees but the allocators keep (glibc's heap after large numpy/pandas frees, Arrow's
pool) would otherwise count against every later step (measured in docs/results.md, cost at scale).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache

import psutil

# A full collection walks every live object: once Dagster, dbt, torch and GX are imported that is
# a pause comparable to a small step, after every step. Below this resident size a step has left
# nothing worth it; the allocator trims (sub-millisecond) run always.
COLLECT_ABOVE_MB = 1024


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_memory(collect_above_mb: float = COLLECT_ABOVE_MB) -> bool:
    """Collect garbage (when the process holds at least `collect_above_mb`), release Arrow's
    unused pool memory and trim the C heap (glibc only). Returns whether it collected."""
    collect = psutil.Process().memory_info().rss >= collect_above_mb * 2**20
    if collect:
        gc.collect()
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except ImportError:  # pragma: no cover - pyarrow is a runtime dependency
        pass
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
    return collect
