"""The pretraining stage's plot: the training curve of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.plots import save_figure


def training_curve(history: list[dict[str, Any]], title: str, path: Path) -> Path:
    """Train loss per epoch and, where validated, valid NDCG@10 on a second axis."""
    import matplotlib

    matplotlib.use("Agg")  # headless: plots go to MLflow and Dagster metadata as files
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = [r["epoch"] for r in history]
    ax.plot(epochs, [r["loss"] for r in history], color="tab:blue", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("train loss", color="tab:blue")
    if any("valid_ndcg@10" in r for r in history):
        ax2 = ax.twinx()
        pts = [(r["epoch"], r["valid_ndcg@10"]) for r in history if "valid_ndcg@10" in r]
        ax2.plot(*zip(*pts, strict=True), color="tab:orange", label="valid NDCG@10")
        ax2.set_ylabel("valid NDCG@10", color="tab:orange")
    ax.set_title(title)
    return save_figure(fig, path)
