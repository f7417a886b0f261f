"""Give memory a finished step no longer uses back to the operating system.

The main job runs its steps one after another in one process (the in-process executor), so
what a step frees but the allocators keep (glibc's heap after large numpy/pandas frees, Arrow's
pool) would otherwise count against every later step (measured in docs/results.md, cost at scale).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_memory() -> None:
    """Release Arrow's unused pool memory and trim the C heap (glibc only).

    No forced garbage collection: it walks every live object (a pause after every step once
    Dagster, dbt, torch and GX are imported) and freed nothing measurable after a gate
    (docs/results.md); Python's own generational collector still runs.
    """
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except ImportError:  # pragma: no cover - pyarrow is a runtime dependency
        pass
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
