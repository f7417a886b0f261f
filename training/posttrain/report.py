"""What the stage writes for people: the advantage statistics and histogram, the study's
Markdown table, CSV and beta-sweep plot, and the figures of `reports/posttrain.json`."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: plots go to MLflow and Dagster metadata as files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from common.plots import save_figure  # noqa: E402
from common.tables import markdown_table, mean_ci_cell  # noqa: E402
from training.posttrain.evaluator import METRICS, RANKING  # noqa: E402
from training.posttrain.study import PRETRAINED  # noqa: E402

PROTOCOL = (
    "ranking: temporal test split, targets with reward strictly above the split's median, "
    "full-catalogue ranking with the user's seen items excluded; slates (judge, true "
    "satisfaction, deviation): one state per test user (history before the first test event), "
    "top-10 with seen items excluded; judge = reward ensemble trained on data disjoint from the "
    "trainer's, mean over members of the slate mean r_hat, spread = std over members; true "
    "satisfaction normalised per user between a random (0) and the oracle's best (1) unseen slate; "
    "KL(pi || pi_pretrained) of the catalogue softmax; mean ± 95% CI (Student t) over seeds"
)
_COLUMNS = (*RANKING, "judge_reward", "true_satisfaction", "kl", "top10_overlap")


# ---- advantages ---------------------------------------------------------------------------------
def advantage_stats(advantage: np.ndarray) -> dict[str, float]:
    """Count, mean, std, quantiles and share > 0 of the finite advantages."""
    a = advantage[np.isfinite(advantage)]
    if not len(a):
        raise ValueError("no finite advantage: no training target was scored")
    q = np.quantile(a, [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
    names = ("p01", "p05", "p25", "p50", "p75", "p95", "p99")
    return {
        "rows": int(len(a)),
        "mean": float(a.mean()),
        "std": float(a.std()),
        **{n: float(v) for n, v in zip(names, q, strict=True)},
        "fraction_positive": float((a > 0).mean()),
    }


def advantage_histogram(values: np.ndarray, title: str, path: Path) -> Path:
    """The finite advantages' histogram as a PNG at `path`."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(values[np.isfinite(values)], bins=60, color="tab:blue")
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_xlabel("advantage A = r_hat(s,a) - V(s)")
    ax.set_ylabel("training events")
    ax.set_title(title)
    return save_figure(fig, path)


# ---- the study's table and plot -----------------------------------------------------------------
def results_markdown(summary: dict[str, dict[str, Any]], dataset: str) -> str:
    """The study's table: one row per configuration, mean ± 95% CI of every metric measured."""
    cols = [c for c in _COLUMNS if any(c in row for row in summary.values())]
    rows = []
    for label, row in summary.items():
        spread = row.get("judge_spread")
        cells = [mean_ci_cell(row.get(c)) for c in cols]
        rows.append([label, row["runs"], *cells, f"{spread['mean']:.4f}" if spread else "-"])
    title = f"**{dataset}**: post-training, mean ± 95% CI over seeds (seen items excluded)"
    return markdown_table(["policy", "runs", *cols, "judge spread"], rows, title)


def write_csv(summary: dict[str, dict[str, Any]], dataset: str, path: Path) -> Path:
    """The study's table as CSV: a mean and a ci95 column per metric measured."""
    cols = [c for c in METRICS if any(c in row for row in summary.values())]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["dataset", "policy", "method", "beta", "runs"]
            + [f"{c}_{s}" for c in cols for s in ("mean", "ci95")]
        )
        for label, row in summary.items():
            values = [row[c][s] if c in row else "" for c in cols for s in ("mean", "ci95")]
            beta = "" if row["beta"] is None else row["beta"]
            w.writerow([dataset, label, row["method"], beta, row["runs"], *values])
    return path


def beta_sweep_plot(summary: dict[str, dict[str, Any]], dataset: str, path: Path) -> Path:
    """Judge reward, true satisfaction (simulator) and NDCG@10 against beta for every beta
    method, with BC (and the pretrained policy) as horizontal lines and bands."""
    panels = [
        m
        for m in ("true_satisfaction", "judge_reward", "ndcg@10")
        if any(m in r for r in summary.values())
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], panels, strict=True):
        for method in dict.fromkeys(r["method"] for r in summary.values()):
            rows = sorted(
                (r for r in summary.values() if r["method"] == method and r["beta"] is not None),
                key=lambda r: r["beta"],
            )
            if rows and metric in rows[0]:
                x = [r["beta"] for r in rows]
                y = [r[metric]["mean"] for r in rows]
                e = [r[metric]["ci95"] for r in rows]
                ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=method)
        for ref, style in (("bc", "tab:red"), (PRETRAINED, "gray")):
            if ref in summary and metric in summary[ref]:
                m, c = summary[ref][metric]["mean"], summary[ref][metric]["ci95"]
                ax.axhline(m, color=style, ls="--", label=ref)
                if c > 0:
                    ax.axhspan(m - c, m + c, color=style, alpha=0.15)
        ax.set_xscale("log")
        ax.set_xlabel("beta")
        ax.set_title(metric.replace("_", " "))
        ax.legend(fontsize=8)
    fig.suptitle(f"{dataset}: beta sweep (mean ± 95% CI over seeds)")
    return save_figure(fig, path)


def figures_by_policy(summary: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per policy: {metric: {mean, ci95}} and its number of runs, as the report shows them."""
    return {
        label: {m: row[m] for m in METRICS if m in row} | {"runs": row["runs"]}
        for label, row in summary.items()
    }
