"""Markdown tables and MLflow logging shared by every stage's report (written once here)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


def mean_ci_cell(value: Mapping[str, float] | None, digits: int = 4) -> str:
    """ "0.1234 ± 0.0056" for a {mean, ci95} figure; "-" where there is none."""
    if value is None:
        return "-"
    return f"{value['mean']:.{digits}f} ± {value['ci95']:.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "") -> str:
    """A GitHub-flavoured Markdown table (cells already formatted as text), optionally titled."""
    lines = [title, ""] if title else []
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("|" + " --- |" * len(headers))
    lines.extend("| " + " | ".join(str(c) for c in row) + " |" for row in rows)
    return "\n".join(lines) + "\n"


def mlflow_metric_name(name: str) -> str:
    """MLflow metric names allow no "@" or "=": ndcg@10 -> ndcg_at_10, beta=0.1 -> beta_0.1."""
    return name.replace("@", "_at_").replace("=", "_")


def finite_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """The finite metrics, with MLflow-safe names (MLflow refuses NaN in some stores)."""
    return {mlflow_metric_name(k): float(v) for k, v in metrics.items() if math.isfinite(v)}


def log_artifacts(paths: Iterable[Path]) -> None:
    """Every existing file into the active MLflow run."""
    import mlflow

    for path in paths:
        if Path(path).exists():
            mlflow.log_artifact(str(path))
