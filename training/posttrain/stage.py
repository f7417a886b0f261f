"""The post-training stage: advantages, then the study (every method x beta x seed fine-tuned from
the pretrained policy), its evaluation (training/posttrain/evaluate.py), the results table and the
beta-sweep plot, MLflow tracking, `reports/posttrain.json`, and the champion.

Knows nothing of Dagster: the assets in orchestration/assets/posttrain.py call these functions.

Every policy is trained before anything is evaluated, and the simulator's oracle is loaded only
in the evaluation step, so no training code can ever see it.

Champion rule. The candidate is the post-trained configuration (any method but BC, at any beta)
with the highest mean judge reward across seeds: the judge is the only criterion that exists on
real data, so the oracle never selects. It is registered in the MLflow model registry, with the
alias `champion`, only where its mean judge reward is higher than BC's and, on the simulator, its
mean true satisfaction too; with `require_significant` the 95% intervals must also not overlap.
The weights registered are those of the candidate's seed with the highest judge reward.
Otherwise nothing is registered and the report says why.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: plots go to MLflow and Dagster metadata as files
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402

from common.paths import champion_dir  # noqa: E402
from common.plots import save_figure
from common.reports import write_report
from common.settings import setting  # noqa: E402
from common.tracking import start_run  # noqa: E402
from training.core.data import SequenceData  # noqa: E402
from training.core.stats import mean_ci
from training.models import SequenceEncoder  # noqa: E402
from training.models.checkpoint import load_policy_on_temporal_split
from training.posttrain import evaluate as ev
from training.reward.contract import (  # noqa: E402
    CatalogueRewardModel,
    advantages_path,
    reward_judge_dir,
    reward_model_dir,
)

Log = Callable[[str], None]
EXPERIMENT = "posttrain"
BETA_METHODS = ("asft", "dpo", "ipo", "cql", "ppo")  # methods with a temperature/strength beta
REWARD_MODEL_METHODS = ("dpo", "ipo", "ppo")  # methods that query the trainer's reward model
PRETRAINED = "pretrained"
RANKING = ("ndcg@10", "hr@10", "ndcg@50", "hr@50", "mrr")
METRICS = (*RANKING, "judge_reward", "judge_spread", "true_satisfaction", "kl", "top10_overlap")
PROTOCOL = (
    "ranking: temporal test split, targets with reward strictly above the split's median, "
    "full-catalogue ranking with the user's seen items excluded; slates (judge, true "
    "satisfaction, deviation): one state per test user (history before the first test event), "
    "top-10 with seen items excluded; judge = reward ensemble trained on data disjoint from the "
    "trainer's, mean over members of the slate mean r_hat, spread = std over members; true "
    "satisfaction normalised per user between a random (0) and the oracle's best (1) unseen slate; "
    "KL(pi || pi_pretrained) of the catalogue softmax; mean ± 95% CI (Student t) over seeds"
)


@dataclass(frozen=True)
class PosttrainSettings:
    """What the study trains and how it is evaluated. `betas` sweep every method in
    BETA_METHODS (its meaning per method: training/posttrain/finetune.py); `method_betas` gives a
    method
    its own sweep instead (a DPO beta and an A-SFT temperature live on different scales); BC and
    RW-BC have none."""

    methods: tuple[str, ...] = ("bc", "asft")
    betas: tuple[float, ...] = (0.1, 1.0, 10.0)  # too sharp, middle, close to BC
    method_betas: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    weight_clip: float = 20.0
    self_normalise: bool = True
    k: int = 10
    eval_users: int | None = 1000  # slate states (one per test user), sampled once, seeded
    max_ranking_targets: int | None = 5_000  # sampled once, seeded; None: every one
    require_significant: bool = False  # champion must beat BC with non-overlapping 95% CIs
    registered_model_name: str = "asft-recommender"
    num_threads: int | None = None  # None: leave torch's setting alone

    def __post_init__(self) -> None:
        if not self.methods or not self.seeds:
            raise ValueError("the study needs at least one method and one seed")
        unknown = sorted(set(self.method_betas) - set(BETA_METHODS))
        if unknown:
            raise ValueError(f"method_betas names {unknown}: only {BETA_METHODS} take a beta")
        for m in set(self.methods) & set(BETA_METHODS):
            betas = self.betas_of(m)
            if not betas:
                raise ValueError(f"method {m!r} needs at least one beta")
            if any(b <= 0 for b in betas):  # type: ignore[operator]
                raise ValueError(f"betas of {m!r} must be > 0, got {betas}")

    def betas_of(self, method: str) -> tuple[float | None, ...]:
        if method not in BETA_METHODS:
            return (None,)
        return tuple(self.method_betas.get(method, self.betas))

    def configurations(self) -> list[tuple[str, float | None]]:
        """(method, beta) pairs: every beta for the beta methods, one entry for the others."""
        return [(m, b) for m in self.methods for b in self.betas_of(m)]


def label_of(method: str, beta: float | None) -> str:
    return method if beta is None else f"{method}@beta={beta:g}"


@dataclass
class PosttrainInputs:
    policy: SequenceEncoder  # the pretrained policy, eval mode
    meta: dict[str, Any]  # its checkpoint's metadata (configs, n_items)
    data: SequenceData  # temporal split, the policy's vocab

    @property
    def temperature(self) -> float:
        return float(self.meta.get("train_config", {}).get("temperature", 0.1))


def load_posttrain_inputs(root: Path) -> PosttrainInputs:
    """The pretrained policy and the warehouse sequences on the temporal split, in its ids."""
    policy, _, meta, data = load_policy_on_temporal_split(root)
    return PosttrainInputs(policy, meta, data)


def load_ensemble(directory: Path) -> CatalogueRewardModel:
    from training.reward.model import load_reward_ensemble  # the reward stage's module

    if not directory.exists():
        raise FileNotFoundError(f"no reward ensemble at {directory}: materialize reward_model")
    return load_reward_ensemble(directory)


# ---- advantages --------------------------------------------------------------------------------
def advantage_stats(advantage: np.ndarray) -> dict[str, float]:
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


def _histogram(values: np.ndarray, title: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(values[np.isfinite(values)], bins=60, color="tab:blue")
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_xlabel("advantage A = r_hat(s,a) - V(s)")
    ax.set_ylabel("training events")
    ax.set_title(title)
    return save_figure(fig, path)


@dataclass
class AdvantagesResult:
    path: Path
    stats: dict[str, float]
    state_sum_max_abs: float  # max |sum_a pi(a|s) A(s, a)| over states: ~0 by construction
    histogram: Path
    seconds: float


@dataclass(frozen=True)
class AdvantagesSettings:
    """How r_hat and V(s) are taken from the trainer's reward ensemble."""

    lcb: float = setting(0.0, "r_hat = the ensemble's mean minus lcb standard deviations")
    top_k: int | None = setting(
        None, "V(s) over the policy's top_k titles (large catalogues); None = every title"
    )
    batch_size: int = setting(256, "states per reward-model call: fewer per-day catalogue passes")


def run_advantages(
    root: Path,
    settings: AdvantagesSettings = AdvantagesSettings(),
    *,
    reward_model: CatalogueRewardModel | None = None,
    log: Log = print,
) -> AdvantagesResult:
    """A for every training target of the temporal split, written to `advantages_path(root)`."""
    from training.posttrain.advantages import advantages_table, compute_advantages

    t0 = time.perf_counter()
    inputs = load_posttrain_inputs(root)
    model = reward_model if reward_model is not None else load_ensemble(reward_model_dir(root))
    adv = compute_advantages(
        inputs.policy,
        model,
        inputs.data,
        lcb=settings.lcb,
        top_k=settings.top_k,
        batch_size=settings.batch_size,
        temperature=inputs.temperature,
        log=log,
    )
    path = advantages_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(advantages_table(adv, inputs.data), tmp)
    tmp.replace(path)
    swa = adv.state_weighted_advantage[np.isfinite(adv.state_weighted_advantage)]
    return AdvantagesResult(
        path=path,
        stats=advantage_stats(adv.advantage),
        state_sum_max_abs=float(np.abs(swa).max()) if len(swa) else float("nan"),
        histogram=_histogram(adv.advantage, "advantages", root / "plots" / "advantages.png"),
        seconds=time.perf_counter() - t0,
    )


# ---- the study --------------------------------------------------------------------------------
@dataclass
class Evaluator:
    """Everything a policy is evaluated against, prepared once: the judge's scores and the
    oracle's random/best slate values at every state, and the pretrained policy's view, do not
    depend on the policy evaluated."""

    data: SequenceData
    ranking_split: Any
    states: Any
    judge_scores: np.ndarray
    reference: ev.PolicyView
    scale: ev.SatisfactionScale | None  # None: no oracle (MovieLens)
    k: int
    temperature: float

    def __call__(self, policy: SequenceEncoder) -> dict[str, float]:
        view = ev.policy_view(policy, self.data, self.states, self.k, self.temperature)
        out = ev.ranking_metrics(policy, self.data, self.ranking_split)
        out |= ev.judge_reward(view.slates, self.judge_scores)
        if self.scale is not None:
            out["true_satisfaction"] = ev.true_satisfaction(
                view.slates, self.scale, self.data, self.states
            )
        dev = ev.deviation_between(view, self.reference)
        return out | {"kl": dev["kl"], "top10_overlap": dev[f"top{self.k}_overlap"]}


def build_evaluator(
    inputs: PosttrainInputs, judge: CatalogueRewardModel, root: Path, settings: PosttrainSettings
) -> Evaluator:
    data, k = inputs.data, settings.k
    states = ev.user_states(data, "test", settings.eval_users, seed=0)
    oracle = ev.load_oracle(root)  # evaluation only: every policy is trained by now
    return Evaluator(
        data=data,
        ranking_split=ev.subsample(ev.above_median_targets(data), settings.max_ranking_targets),
        states=states,
        judge_scores=ev.judge_state_scores(judge, data, states),
        reference=ev.policy_view(inputs.policy, data, states, k, inputs.temperature),
        scale=ev.satisfaction_scale(oracle, data, states, k) if oracle is not None else None,
        k=k,
        temperature=inputs.temperature,
    )


@dataclass
class TrainedPolicy:
    method: str
    beta: float | None
    seed: int
    state: dict[str, torch.Tensor]
    train_seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str = ""


def _posttrain_config(
    settings: PosttrainSettings, method: str, beta: float | None, seed: int, temperature: float
):
    from training.posttrain.finetune import PosttrainConfig

    kw: dict[str, Any] = dict(
        method=method,
        temperature=temperature,  # the pretrained policy's scoring
        weight_clip=settings.weight_clip,
        self_normalise=settings.self_normalise,
        steps=settings.steps,
        batch_size=settings.batch_size,
        lr=settings.lr,
        seed=seed,
    )
    if beta is not None:
        kw["beta"] = beta
    return PosttrainConfig(**kw)


def train_policies(
    inputs: PosttrainInputs,
    settings: PosttrainSettings,
    advantages: Any = None,
    reward_model: CatalogueRewardModel | None = None,
    log: Log = print,
) -> list[TrainedPolicy]:
    """Fine-tune the pretrained policy for every (method, beta, seed). Reads no oracle."""
    from training.posttrain.finetune import METHODS, finetune

    unknown = set(settings.methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown post-training method(s) {sorted(unknown)}; known: {METHODS}")
    out = []
    for method, beta in settings.configurations():
        for seed in settings.seeds:
            t0 = time.perf_counter()
            model = finetune(
                inputs.policy,
                inputs.data,
                _posttrain_config(settings, method, beta, seed, inputs.temperature),
                advantages=advantages if method == "asft" else None,
                reward_model=reward_model,
                log=log,
            )
            seconds = time.perf_counter() - t0
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            out.append(TrainedPolicy(method, beta, seed, state, seconds))
            log(f"trained {label_of(method, beta)} seed {seed} in {seconds:.1f}s")
    return out


def _model(inputs: PosttrainInputs, state: dict[str, torch.Tensor]) -> SequenceEncoder:
    model = SequenceEncoder(inputs.data.n_items, inputs.policy.cfg)
    model.load_state_dict(state)
    return model.eval()


def _mlflow_metrics(metrics: dict[str, float]) -> dict[str, float]:
    return {k.replace("@", "_at_"): v for k, v in metrics.items() if math.isfinite(v)}


def summarise(
    policies: list[TrainedPolicy], pretrained: dict[str, float]
) -> dict[str, dict[str, Any]]:
    """Per configuration: method, beta, runs and {metric: {mean, ci95}} over seeds."""
    groups: dict[str, list[TrainedPolicy]] = {}
    for p in policies:
        groups.setdefault(label_of(p.method, p.beta), []).append(p)
    summary: dict[str, dict[str, Any]] = {
        PRETRAINED: {"method": PRETRAINED, "beta": None, "runs": 1}
        | {m: {"mean": v, "ci95": 0.0} for m, v in pretrained.items()}
    }
    for label, runs in groups.items():
        row: dict[str, Any] = {"method": runs[0].method, "beta": runs[0].beta, "runs": len(runs)}
        for m in METRICS:
            if m in runs[0].metrics:
                mean, ci = mean_ci([r.metrics[m] for r in runs])
                row[m] = {"mean": mean, "ci95": ci}
        row["train_seconds"] = float(np.mean([r.train_seconds for r in runs]))
        summary[label] = row
    return summary


# ---- the champion -----------------------------------------------------------------------------
def _beats(a: dict[str, float], b: dict[str, float], significant: bool) -> bool:
    if significant:
        return a["mean"] - a["ci95"] > b["mean"] + b["ci95"]
    return a["mean"] > b["mean"]


def choose_champion(
    summary: dict[str, dict[str, Any]], require_significant: bool = False
) -> dict[str, Any]:
    """The champion decision (see the module docstring): candidate, checks, and the reason."""
    candidates = [k for k, v in summary.items() if v["method"] not in (PRETRAINED, "bc")]
    if not candidates:
        return {"label": None, "registered": False, "reason": "no post-trained method besides BC"}
    best = max(candidates, key=lambda k: summary[k]["judge_reward"]["mean"])
    decision: dict[str, Any] = {"label": best, "registered": False}
    if "bc" not in summary:
        return decision | {"reason": "BC is not in the study: nothing to compare against"}
    checks = {}
    for metric in ("judge_reward", "true_satisfaction"):
        if metric not in summary[best]:
            continue  # no oracle (MovieLens): the judge alone decides
        a, b = summary[best][metric], summary["bc"][metric]
        checks[metric] = {
            "candidate": a["mean"],
            "bc": b["mean"],
            "higher_mean": a["mean"] > b["mean"],
            "non_overlapping_ci": a["mean"] - a["ci95"] > b["mean"] + b["ci95"],
            "passed": _beats(a, b, require_significant),
        }
    decision["checks"] = checks
    failed = [m for m, c in checks.items() if not c["passed"]]
    if failed:
        rule = "non-overlapping 95% CIs" if require_significant else "a higher mean"
        reason = f"{best} does not beat BC on {', '.join(failed)} ({rule} required)"
        return decision | {"reason": reason}
    return decision | {"registered": True, "reason": f"{best} beats BC on {', '.join(checks)}"}


def register_champion(model: SequenceEncoder, name: str, tags: dict[str, str]) -> tuple[str, str]:
    """Log the model in the active MLflow run, register it and point alias `champion` at it."""
    info = mlflow.pytorch.log_model(
        model,
        name="champion_model",
        serialization_format="pickle",
        code_paths=[str(Path(__file__).resolve().parents[1])],  # the model classes travel with it
        pip_requirements=["torch==2.13.0", "numpy"],
        registered_model_name=name,
    )
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(name, "champion", version)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    return name, version


def save_champion(
    root: Path, inputs: PosttrainInputs, policy: TrainedPolicy, info: dict[str, Any]
) -> Path:
    """`<data>/models/champion/`: best.pt in the pretraining checkpoint format, vocab, card."""
    folder = champion_dir(root)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    keep = ("model_config", "train_config", "n_items")
    checkpoint = {k: inputs.meta[k] for k in keep if k in inputs.meta}
    checkpoint |= {"model": policy.state, "vocab": inputs.data.vocab.to_dict()}
    torch.save(checkpoint, folder / "best.pt")
    inputs.data.vocab.save_json(folder / "vocab.json")
    (folder / "champion.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    return folder


# ---- table and plot ---------------------------------------------------------------------------
_COLUMNS = (*RANKING, "judge_reward", "true_satisfaction", "kl", "top10_overlap")


def _cell(v: dict[str, float] | None) -> str:
    return "-" if v is None else f"{v['mean']:.4f} ± {v['ci95']:.4f}"


def markdown_table(summary: dict[str, dict[str, Any]], dataset: str) -> str:
    cols = [c for c in _COLUMNS if any(c in row for row in summary.values())]
    lines = [
        f"**{dataset}**: post-training, mean ± 95% CI over seeds (seen items excluded)",
        "",
        "| policy | runs | " + " | ".join(cols) + " | judge spread |",
        "|" + " --- |" * (len(cols) + 3),
    ]
    for label, row in summary.items():
        spread = row.get("judge_spread")
        cells = [_cell(row.get(c)) for c in cols]
        tail = f"{spread['mean']:.4f}" if spread else "-"
        lines.append(f"| {label} | {row['runs']} | " + " | ".join(cells) + f" | {tail} |")
    return "\n".join(lines) + "\n"


def write_csv(summary: dict[str, dict[str, Any]], dataset: str, path: Path) -> Path:
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


# ---- the stage --------------------------------------------------------------------------------
@dataclass
class PosttrainStudyResult:
    report: dict[str, Any]
    summary: dict[str, dict[str, Any]]
    table_md: str
    table_md_path: Path
    table_csv: Path
    plot: Path
    study_run_id: str
    policy_run_ids: list[str]
    champion: dict[str, Any]
    seconds: dict[str, float]


def run_posttrain_study(
    settings: PosttrainSettings,
    root: Path,
    dataset: str,
    *,
    log: Log = print,
    tags: dict[str, str] | None = None,
    advantages: Any = None,
    reward_model: CatalogueRewardModel | None = None,
    judge: CatalogueRewardModel | None = None,
) -> PosttrainStudyResult:
    """Train, evaluate, aggregate, track, report and pick the champion (module docstring).

    `advantages`, `reward_model` and `judge` default to what the earlier assets saved under
    `root` (advantages Parquet, reward_model/, reward_judge/)."""
    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    t_start = time.perf_counter()
    inputs = load_posttrain_inputs(root)
    data = inputs.data
    if "asft" in settings.methods and advantages is None:
        from training.posttrain.advantages import read_advantages

        path = advantages_path(root)
        if not path.exists():
            raise FileNotFoundError(f"no advantages at {path}: materialize `advantages` first")
        advantages = read_advantages(path, data)
    if reward_model is None and set(settings.methods) & set(REWARD_MODEL_METHODS):
        reward_model = load_ensemble(reward_model_dir(root))

    load_seconds = time.perf_counter() - t_start

    # 1. Train everything. The oracle is not loaded before this returns.
    t0 = time.perf_counter()
    policies = train_policies(inputs, settings, advantages, reward_model, log)
    train_seconds = time.perf_counter() - t0

    # 2. Evaluate the pretrained policy and every post-trained one on the same states.
    t0 = time.perf_counter()
    judge = judge if judge is not None else load_ensemble(reward_judge_dir(root))
    evaluate = build_evaluator(inputs, judge, root, settings)
    pretrained = evaluate(inputs.policy)
    study_id = uuid.uuid4().hex[:12]
    run_tags = {"dataset": dataset, "study": study_id, **(tags or {})}
    run_ids = []
    for p in policies:
        p.metrics = evaluate(_model(inputs, p.state))
        name = f"{dataset}-{label_of(p.method, p.beta)}-seed{p.seed}"
        with start_run(EXPERIMENT, name, tags={**run_tags, "method": p.method}, root=root) as run:
            mlflow.log_params(
                dataclasses.asdict(
                    _posttrain_config(settings, p.method, p.beta, p.seed, inputs.temperature)
                )
            )
            mlflow.log_metrics(_mlflow_metrics(p.metrics | {"train_seconds": p.train_seconds}))
        p.run_id = run.info.run_id
        run_ids.append(p.run_id)
        log(f"{name}: {p.metrics}")
    eval_seconds = time.perf_counter() - t0
    has_oracle = evaluate.scale is not None

    # 3. Aggregate, write the table and the plot.
    summary = summarise(policies, pretrained)
    out_dir = root / "reports" / "posttrain"
    table_md = markdown_table(summary, dataset)
    md_path = out_dir / "posttrain_results.md"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(table_md)
    csv_path = write_csv(summary, dataset, out_dir / "posttrain_results.csv")
    plot = beta_sweep_plot(summary, dataset, out_dir / "beta_sweep.png")

    # 4. The champion, registered only where the rule holds; the study run holds the artifacts.
    decision = choose_champion(summary, settings.require_significant)
    with start_run(EXPERIMENT, f"{dataset}-study", tags={**run_tags, "kind": "study"}, root=root):
        mlflow.log_params(
            {k: str(v) for k, v in dataclasses.asdict(settings).items()}
            | {"ranking_targets": len(evaluate.ranking_split), "states": len(evaluate.states)}
        )
        for label, row in summary.items():
            mlflow.log_metrics(
                {
                    f"{label}.{m}".replace("@", "_at_").replace("=", "_"): row[m]["mean"]
                    for m in METRICS
                    if m in row
                }
            )
        for path in (md_path, csv_path, plot):
            mlflow.log_artifact(str(path))
        if decision["registered"]:
            best = max(
                (p for p in policies if label_of(p.method, p.beta) == decision["label"]),
                key=lambda p: p.metrics["judge_reward"],
            )
            card = {
                "dataset": dataset,
                "method": best.method,
                "beta": best.beta,
                "seed": best.seed,
                "policy_run_id": best.run_id,
            }
            name, version = register_champion(
                _model(inputs, best.state), settings.registered_model_name,
                {k: str(v) for k, v in card.items()},
            )  # fmt: skip
            decision |= card | {"model_name": name, "model_version": version}
            save_champion(root, inputs, best, decision | {"metrics": best.metrics})
        else:
            shutil.rmtree(champion_dir(root), ignore_errors=True)  # no stale champion is served
        mlflow.set_tag("champion", decision.get("model_version", "none"))
        mlflow.set_tag("champion_reason", decision["reason"][:250])
        study_run_id = mlflow.active_run().info.run_id
    log(f"champion: {decision}")

    seconds = {
        "load": round(load_seconds, 1),
        "train": round(train_seconds, 1),
        "evaluate": round(eval_seconds, 1),
        "total": round(time.perf_counter() - t_start, 1),
    }
    report = {
        "dataset": dataset,
        "protocol": PROTOCOL,
        "seen_items_excluded": True,
        "simulator_ground_truth": has_oracle,
        "test": {
            dataset: {
                label: {m: row[m] for m in METRICS if m in row} | {"runs": row["runs"]}
                for label, row in summary.items()
            }
        },
        "evaluated": {
            "ranking_targets": len(evaluate.ranking_split),
            "slate_states": len(evaluate.states),
        },
        "champion": {k: v for k, v in decision.items() if k != "checks"},
        "champion_checks": decision.get("checks", {}),
        "seeds": list(settings.seeds),
        "betas": {m: list(settings.betas_of(m)) for m in settings.methods if m in BETA_METHODS},
        "steps": settings.steps,
        "seconds": seconds,
        "mlflow_study_run_id": study_run_id,
    }
    write_report("posttrain", report, root=root)
    return PosttrainStudyResult(
        report, summary, table_md, md_path, csv_path, plot, study_run_id, run_ids, decision,
        seconds,
    )  # fmt: skip
