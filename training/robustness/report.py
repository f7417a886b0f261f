"""The study's tables from its runs (one row per kind x level x policy): the summary over seeds,
each method's beta picked by the oracle-free rule beside the oracle-best one, the judges'
validity (rank correlation with the ground truth over every policy of a level), the reward
model's correlation with the ground truth, and the crossovers as measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from common.tables import markdown_table
from training.core.stats import mean_ci

HEADLINE = ("true_satisfaction", "judge_reward", "independent_judge_reward", "ndcg@10", "kl")
ROBUST, STRONG = ("asft", "exprsft"), ("ppo", "dpo")
JUDGES = ("judge_reward", "independent_judge_reward")
VALID_TAU = 0.5  # below this Kendall tau a judge's order of the policies is called not valid


def rule_text(select_by: str, max_kl: float) -> str:
    return (f"highest mean {select_by} among the method's betas with mean KL <= {max_kl:g} "
            "(the smallest KL if none); the oracle is never read")  # fmt: skip


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (kind, level, method, beta): runs, and mean and ci95 of every headline figure."""
    rows = []
    keys = ["kind", "level", "method", "beta"]
    for key, g in frame.groupby(keys, dropna=False, sort=True):
        row: dict[str, Any] = dict(zip(keys, key, strict=True)) | {"runs": len(g)}
        for m in HEADLINE:
            if m in g and g[m].notna().any():
                row[m], row[f"{m}_ci95"] = mean_ci(g[m].dropna().to_numpy())
        rows.append(row)
    return pd.DataFrame(rows)


def select(summary: pd.DataFrame, select_by: str, max_kl: float) -> pd.DataFrame:
    """Per (kind, level, method): the beta the rule picks (rule_text) with its figures, and the
    oracle-best beta (highest mean true satisfaction) with its true satisfaction."""
    rows = []
    for _, g in summary.groupby(["kind", "level", "method"], sort=True):
        within = g[g["kl"] <= max_kl]
        pick = within.loc[within[select_by].idxmax()] if len(within) else g.loc[g["kl"].idxmin()]
        row = pick.to_dict()
        if "true_satisfaction" in g and g["true_satisfaction"].notna().any():
            best = g.loc[g["true_satisfaction"].idxmax()]
            row |= {
                "oracle_beta": best["beta"],
                "oracle_true_satisfaction": best["true_satisfaction"],
                "oracle_true_satisfaction_ci95": best["true_satisfaction_ci95"],
            }
        rows.append(row)
    return pd.DataFrame(rows)


def validity(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (kind, level): Kendall and Spearman of each judge's reward with true satisfaction
    over every policy run of the level (each seed one policy, the pretrained one included), and
    the trainer's reward model's correlation with true satisfaction on the test events."""
    rows = []
    for (kind, level), g in frame.groupby(["kind", "level"], sort=True):
        row: dict[str, Any] = {"kind": kind, "level": level, "policies": len(g)}
        for col in ("reward_truth_spearman", "reward_truth_pearson"):
            row[col] = float(g[col].iloc[0]) if col in g else np.nan
        for judge in JUDGES:
            ok = g[[judge, "true_satisfaction"]].dropna() if "true_satisfaction" in g else []
            tau = rho = np.nan
            if len(ok) > 2:
                tau = float(stats.kendalltau(ok[judge], ok["true_satisfaction"]).statistic)
                rho = float(stats.spearmanr(ok[judge], ok["true_satisfaction"]).statistic)
            name = "judge" if judge == "judge_reward" else "independent_judge"
            row |= {f"{name}_kendall": tau, f"{name}_spearman": rho}
        rows.append(row)
    return pd.DataFrame(rows)


def crossovers(selected: pd.DataFrame) -> list[str]:
    """For A-SFT and Exp-RSFT against PPO and DPO (each at its selected beta), per kind: the
    lowest level where the robust method's mean true satisfaction is above the other's, and
    whether their 95% intervals separate there."""
    if "true_satisfaction" not in selected:
        return ["no ground truth: crossovers cannot be measured"]
    lines = []
    for kind, g in selected.groupby("kind", sort=True):
        by = {m: h.set_index("level").sort_index() for m, h in g.groupby("method")}
        for a in (m for m in ROBUST if m in by):
            for b in (m for m in STRONG if m in by):
                x, y = by[a], by[b]
                levels = [lv for lv in x.index if lv in y.index]
                above = [lv for lv in levels if x.at[lv, "true_satisfaction"] >
                         y.at[lv, "true_satisfaction"]]  # fmt: skip
                if not above:
                    lines.append(f"{kind}: {a} never above {b} (levels {_levels(levels)})")
                    continue
                lv = above[0]
                gap = x.at[lv, "true_satisfaction"] - y.at[lv, "true_satisfaction"]
                clear = (
                    gap > x.at[lv, "true_satisfaction_ci95"] + y.at[lv, "true_satisfaction_ci95"]
                )
                start = "already at the lowest level" if lv == levels[0] else f"from level {lv:g}"
                lines.append(f"{kind}: {a} above {b} {start} (+{gap:.3f}, intervals "
                             f"{'separate' if clear else 'overlap'}); above at "
                             f"{_levels(above)}")  # fmt: skip
    return lines


def _levels(levels: list[float]) -> str:
    return ", ".join(f"{v:g}" for v in levels)


def build_tables(frame: pd.DataFrame, select_by: str, max_kl: float) -> dict[str, Any]:
    summary = summarise(frame)
    chosen = select(summary, select_by, max_kl)
    return {"summary": summary, "selected": chosen, "validity": validity(frame),
            "crossovers": crossovers(chosen)}  # fmt: skip


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (NaN -> None)."""
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v)
             for k, v in row.items()} for row in table.to_dict("records")]  # fmt: skip


def _cell(row: pd.Series, m: str) -> str:
    v = row.get(m, np.nan)
    return "-" if not np.isfinite(v) else f"{v:.3f} ± {row.get(f'{m}_ci95', 0.0):.3f}"


def _beta(v: float) -> str:
    return "-" if not np.isfinite(v) else f"{v:g}"


def markdown(tables: dict[str, Any], dataset: str, s: Any) -> str:
    """The selected-beta table per kind and level, the validity table and the crossovers."""
    sel, val = tables["selected"], tables["validity"]
    rows = [[r["kind"], f"{r['level']:g}", r["method"], _beta(r["beta"]),
             *(_cell(r, m) for m in HEADLINE), _beta(r.get("oracle_beta", np.nan)),
             _cell(pd.Series({"x": r.get("oracle_true_satisfaction", np.nan),
                              "x_ci95": r.get("oracle_true_satisfaction_ci95", 0.0)}), "x")]
            for _, r in sel.iterrows()]  # fmt: skip
    head = [
        "kind",
        "level",
        "method",
        "beta (rule)",
        "true satisfaction",
        "judge reward",
        "independent judge",
        "NDCG@10",
        "KL",
        "oracle-best beta",
        "its true satisfaction",
    ]
    out = markdown_table(head, rows, f"**{dataset}**: each method at the beta picked by the "
                         f"rule ({rule_text(s.select_by, s.max_kl)}); mean ± 95% CI over "
                         f"{len(s.seeds)} seeds")  # fmt: skip
    vrows = [[r["kind"], f"{r['level']:g}", r["policies"],
              *(f"{r[c]:.3f}" if np.isfinite(r[c]) else "-" for c in VALIDITY_COLUMNS),
              _verdict(r)] for _, r in val.iterrows()]  # fmt: skip
    out += "\n" + markdown_table(
        ["kind", "level", "policies", "reward model ρ(truth)", "judge τ", "judge ρ",
         "independent τ", "independent ρ", "verdict"], vrows,
        "Judge validity: rank correlation with true satisfaction over every policy of the "
        f"level (valid: Kendall τ >= {VALID_TAU})")  # fmt: skip
    return (
        out
        + "\nCrossovers (true satisfaction, selected betas):\n\n"
        + "".join(f"- {line}\n" for line in tables["crossovers"])
    )


VALIDITY_COLUMNS = ("reward_truth_spearman", "judge_kendall", "judge_spearman",
                    "independent_judge_kendall", "independent_judge_spearman")  # fmt: skip


def _verdict(row: pd.Series) -> str:
    bad = [name for name, col in (("judge", "judge_kendall"),
                                  ("independent judge", "independent_judge_kendall"))
           if not row[col] >= VALID_TAU]  # fmt: skip
    return "both valid" if not bad else " and ".join(bad) + " not valid"


def write_outputs(frame: pd.DataFrame, tables: dict[str, Any], md: str, out: Path) -> dict:
    files = {"table_md": out / "robustness.md", "table_csv": out / "robustness_selected.csv",
             "runs_csv": out / "robustness_runs.csv",
             "validity_csv": out / "robustness_validity.csv",
             "summary_csv": out / "robustness_summary.csv"}  # fmt: skip
    files["table_md"].write_text(md)
    tables["selected"].to_csv(files["table_csv"], index=False)
    frame.to_csv(files["runs_csv"], index=False)
    tables["validity"].to_csv(files["validity_csv"], index=False)
    tables["summary"].to_csv(files["summary_csv"], index=False)
    return files


def plot(tables: dict[str, Any], path: Path) -> Path:
    from training.robustness.plot import robustness_plot

    return robustness_plot(tables["selected"], tables["validity"], path)
