"""How fast this machine is right now: a fixed CPU workload, to quote beside a wall time.

On a shared VM the same job's wall time moves by a third between hours with the load average
unchanged (other tenants' work on the host is not in it). Run this just before and after a
timing and quote its seconds with it; two timings compare only when these agree.

    .venv/bin/python -m benchmarks.machine_speed

Prints the seconds of a pure-Python loop (one core, the interpreter's speed: dbt, Dagster, GX)
and of float32 matrix products on every core torch uses (the training stages' speed), each the
best of three, and the load average.
"""

from __future__ import annotations

import os
import time

import torch

LOOP = 5_000_000
MATMULS = 60
SIZE = 1024


def python_loop_seconds() -> float:
    start = time.perf_counter()
    total = 0
    for i in range(LOOP):
        total += i % 7
    return time.perf_counter() - start


def matmul_seconds() -> float:
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(SIZE, SIZE, generator=gen)
    b = torch.rand(SIZE, SIZE, generator=gen)
    start = time.perf_counter()
    for _ in range(MATMULS):
        a @ b
    return time.perf_counter() - start


def main() -> None:
    loop = min(python_loop_seconds() for _ in range(3))
    matmul = min(matmul_seconds() for _ in range(3))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"python loop {loop:.2f} s, matmul ({torch.get_num_threads()} threads) {matmul:.2f} s, "
        f"load average {load}"
    )


if __name__ == "__main__":
    main()
