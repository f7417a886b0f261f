"""String ids built by Arrow compute kernels: millions of ids without a Python loop."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def numbered_ids(prefix: str, numbers: np.ndarray, width: int = 0) -> pa.Array:
    """`prefix` + the decimal number, zero-padded to `width` digits (0: no padding)."""
    digits = pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.string())
    if width:
        digits = pc.utf8_lpad(digits, width=width, padding="0")
    # binary_join_element_wise takes the separator last: prefix + "" + digits.
    return pc.binary_join_element_wise(prefix, digits, "")


def padded_width(count: int, minimum: int) -> int:
    """Digits needed for ids 0..count-1 (or 1..count), never fewer than `minimum`."""
    return max(minimum, len(str(max(count, 1))))
