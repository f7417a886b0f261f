"""Evaluating reward predictors on held-out events: error, ranking, classification, calibration.

Every predictor (the ensemble mean, the user-mean and title-mean baselines, the global mean) is
an array of predicted 1-5 rewards for the same events, compared with the logged reward and, on the
simulator, with the hidden true satisfaction of the (user, title) pair; the test predictions
table and the results table of the reward stage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from scipy.stats import rankdata

from common.layout import DataLayout
from common.plots import save_figure
from common.tables import markdown_table
from training.core.data import SequenceData
from training.reward.train import Targets

POSITIVE_REWARD = 4.0  # "liked": reward >= 4 for the AUC
PREDICTOR = {"trainer": "reward_model", "judge": "reward_judge"}  # names in the results table
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


def results_markdown(table: dict[str, dict[str, float]], title: str) -> str:
    """The results table: one row per predictor, one column per metric any predictor has."""
    columns = list(dict.fromkeys(c for row in table.values() for c in row))
    rows = [
        [name, *(f"{row[c]:.4f}" if c in row else "" for c in columns)]
        for name, row in table.items()
    ]
    return markdown_table(["predictor", *columns], rows, title)


def evaluate_ensembles(
    preds: dict[str, np.ndarray],
    base: dict[str, np.ndarray],
    t: Targets,
    truth: np.ndarray | None,
) -> tuple[dict[str, dict[str, float]], dict[str, list[dict[str, float]]]]:
    """One table: the trainer's ensemble (`reward_model`), the judge's (`reward_judge`), the
    baselines; and the calibration of each. `preds` are the members' [K, N] predictions."""
    means = {PREDICTOR[name]: p.mean(0) for name, p in preds.items()}
    table = compare_predictors({**means, **base}, t.rewards, truth)
    for name, p in preds.items():
        table[PREDICTOR[name]]["mean_member_std"] = float(p.std(0).mean())
    calibration = {
        name: calibration_table(pred, t.rewards)
        for name, pred in {**means, **base}.items()
        if name != "global_mean"
    }
    return table, calibration


def oracle_truth(root: Path, dataset: str, data: SequenceData, t: Targets) -> np.ndarray | None:
    """True satisfaction of the test (user, title) pairs; simulator only, evaluation only."""
    from watchlogs.oracle import ARRAYS_FILE, Oracle

    folder = DataLayout(root).oracle
    if dataset != "simulator" or not (folder / ARRAYS_FILE).exists():
        return None
    oracle = Oracle.load(folder)
    return oracle.satisfaction(data.vocab.users.decode(t.users), data.vocab.items.decode(t.items))


def predictions_table(
    data: SequenceData,
    t: Targets,
    preds: dict[str, np.ndarray],
    base: dict[str, np.ndarray],
    truth: np.ndarray | None,
) -> pa.Table:
    """One row per test event: keys, logged reward, both ensembles' mean and spread, the
    baselines (and the true satisfaction on the simulator)."""
    vocab = data.vocab
    columns = {}
    if data.events.event_ids is not None:  # joins the predictions back to the raw events
        columns["event_id"] = pa.array(data.events.event_ids[t.event_index], pa.string())
    columns |= {
        "user_id": pa.array(vocab.users.decode(t.users), pa.string()),
        "item_id": pa.array(vocab.items.decode(t.items), pa.string()),
        "event_ts": pa.array((t.ts * 1e6).astype(np.int64), pa.timestamp("us", tz="UTC")),
        "reward": t.rewards.astype(np.float64),
        "r_hat_mean": preds["trainer"].mean(0).astype(np.float64),
        "r_hat_std": preds["trainer"].std(0).astype(np.float64),
        "judge_mean": preds["judge"].mean(0).astype(np.float64),
        "judge_std": preds["judge"].std(0).astype(np.float64),
        "user_mean": base["user_mean"],
        "item_mean": base["title_mean"],
    }
    if truth is not None:
        columns["true_satisfaction"] = truth.astype(np.float64)
    return pa.table(columns)


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
