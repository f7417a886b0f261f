"""Evaluating reward predictors on held-out events: error, ranking, classification, calibration.

Every predictor (the ensemble mean, the user-mean and title-mean baselines, the global mean) is
an array of predicted 1-5 rewards for the same events, compared with the logged reward and, on the
simulator, with the hidden true satisfaction of the (user, title) pair.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from common.plots import save_figure

POSITIVE_REWARD = 4.0  # "liked": reward >= 4 for the AUC
CALIBRATION_EDGES = np.arange(1.0, 5.01, 0.5)


def rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred) - y) ** 2))) if len(y) else float("nan")


def mae(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(pred) - y))) if len(y) else float("nan")


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")  # undefined for a constant predictor (e.g. the global mean)
    return float(np.corrcoef(a, b)[0, 1])


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the ranks (ties get their average rank)."""
    return pearson(rankdata(a), rankdata(b))


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(score of a random positive > a random negative), ties counted half (Mann-Whitney)."""
    labels = np.asarray(labels, bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def regression_metrics(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {
        "rmse": rmse(pred, y),
        "mae": mae(pred, y),
        "spearman": spearman(pred, y),
        "auc_reward_ge_4": auc(pred, y >= POSITIVE_REWARD),
    }


def calibration_table(
    pred: np.ndarray, y: np.ndarray, edges: np.ndarray = CALIBRATION_EDGES
) -> list[dict[str, float]]:
    """Observed mean reward per bin of predicted reward (bins without events are left out)."""
    which = np.clip(np.digitize(pred, edges[1:-1]), 0, len(edges) - 2)
    rows = []
    for b in range(len(edges) - 1):
        m = which == b
        if m.any():
            rows.append(
                {
                    "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                    "events": int(m.sum()),
                    "mean_predicted": float(pred[m].mean()),
                    "mean_observed": float(y[m].mean()),
                }
            )
    return rows


def baseline_predictions(
    user_mean: np.ndarray, item_mean: np.ndarray, global_mean: float
) -> dict[str, np.ndarray]:
    """User-mean and title-mean at decision time, falling back to the global train mean."""
    return {
        "user_mean": np.where(np.isfinite(user_mean), user_mean, global_mean),
        "title_mean": np.where(np.isfinite(item_mean), item_mean, global_mean),
        "global_mean": np.full(len(user_mean), global_mean),
    }


def compare_predictors(
    predictions: dict[str, np.ndarray], y: np.ndarray, truth: np.ndarray | None = None
) -> dict[str, dict[str, float]]:
    """Metrics of every predictor against the logged reward (and the true satisfaction)."""
    table = {}
    for name, pred in predictions.items():
        row = regression_metrics(pred, y)
        if truth is not None:
            row["spearman_true_satisfaction"] = spearman(pred, truth)
            row["pearson_true_satisfaction"] = pearson(pred, truth)
        table[name] = row
    if truth is not None:  # how much of the truth the logged reward itself carries: a ceiling
        table["logged_reward"] = {
            "spearman_true_satisfaction": spearman(y, truth),
            "pearson_true_satisfaction": pearson(y, truth),
        }
    return table


def markdown_table(table: dict[str, dict[str, float]]) -> str:
    columns = list(dict.fromkeys(c for row in table.values() for c in row))
    lines = ["| predictor | " + " | ".join(columns) + " |", "| --- " * (len(columns) + 1) + "|"]
    for name, row in table.items():
        cells = [f"{row[c]:.4f}" if c in row else "" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def calibration_plot(curves: dict[str, list[dict[str, float]]], path: Path) -> Path:
    """Mean observed vs mean predicted reward per bin, one line per predictor."""
    import matplotlib

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot([1, 5], [1, 5], color="grey", linestyle="--", linewidth=1, label="perfect")
    for name, rows in curves.items():
        ax.plot(
            [r["mean_predicted"] for r in rows],
            [r["mean_observed"] for r in rows],
            marker="o",
            label=name,
        )
    ax.set_xlabel("mean predicted reward (bin)")
    ax.set_ylabel("mean observed reward")
    ax.set_xlim(1, 5)
    ax.set_ylim(1, 5)
    ax.set_title("reward calibration, future-dated test events")
    ax.legend(fontsize=8)
    return save_figure(fig, path)
