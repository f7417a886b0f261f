"""Run contenders side by side: each in a fresh spawned process, alternating round by round, so a
change in a shared machine's load hits every contender alike."""

from __future__ import annotations

import json
import multiprocessing as mp
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def alternate(
    run: Callable[..., dict[str, Any]],
    args_of: Callable[[str], tuple[Any, ...]],
    contenders: Sequence[str],
    rounds: int,
) -> dict[str, list[dict[str, Any]]]:
    """`rounds` x every contender: `run(*args_of(contender))` in a fresh process; results by
    contender, in round order. `run` must be importable (a module-level function)."""
    ctx = mp.get_context("spawn")
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
    for _ in range(rounds):
        for c in contenders:
            with ctx.Pool(1) as pool:
                results[c].append(pool.apply(run, args_of(c)))
    return results


def round_ratios(
    results: dict[str, list[dict[str, Any]]], numerator: str, denominator: str, key: str
) -> list[float]:
    """Per round, `key` of `numerator` over `key` of `denominator` (same round, same load)."""
    pairs = zip(results[numerator], results[denominator], strict=True)
    return [n[key] / d[key] for n, d in pairs]


def save(report: dict[str, Any], out: Path, table: Callable[[dict[str, Any]], str]) -> None:
    """Write the report as JSON to `out` and print its table."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
