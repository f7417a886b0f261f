"""The study's figure: per kind of corruption, true satisfaction against the level (a line per
method at its selected beta, 95% band over seeds) above a panel of correlations with the ground
truth (the trainer's reward model on test events; both judges' Kendall tau over policies)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from common.plots import save_figure


def robustness_plot(selected: pd.DataFrame, validity: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted(selected["kind"].unique())
    fig, axes = plt.subplots(2, len(kinds), figsize=(5.5 * len(kinds), 7), squeeze=False,
                             sharex="col", height_ratios=(2, 1))  # fmt: skip
    metric = "true_satisfaction" if "true_satisfaction" in selected else "judge_reward"
    for j, kind in enumerate(kinds):
        top, bottom = axes[0, j], axes[1, j]
        for method, g in selected[selected["kind"] == kind].groupby("method", sort=True):
            g = g.sort_values("level")
            x, y = g["level"].to_numpy(), g[metric].to_numpy(dtype=float)
            ci = g.get(f"{metric}_ci95", pd.Series(np.zeros(len(g)))).to_numpy(dtype=float)
            style = "--" if method in ("pretrained", "bc") else "-"
            (line,) = top.plot(x, y, style, marker="o", ms=3, label=method)
            top.fill_between(x, y - ci, y + ci, alpha=0.15, color=line.get_color())
        top.set_title(f"{kind}: {metric.replace('_', ' ')} (selected beta, 95% CI)")
        top.grid(alpha=0.3)
        v = validity[validity["kind"] == kind].sort_values("level")
        for col, label in (
            ("reward_truth_spearman", "reward model ρ (test events)"),
            ("judge_kendall", "judge τ (policies)"),
            ("independent_judge_kendall", "independent judge τ (policies)"),
        ):
            if col in v:
                bottom.plot(v["level"], v[col], marker="o", ms=3, label=label)
        bottom.set_xlabel(f"{kind} level")
        bottom.set_ylabel("correlation with truth")
        bottom.axhline(0, color="grey", lw=0.5)
        bottom.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7, loc="best")
    axes[1, -1].legend(fontsize=7, loc="best")
    return save_figure(fig, path)
