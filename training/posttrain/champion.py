"""The champion rule, and the champion's registration and files.

A candidate is a post-trained configuration (any method but BC, at any beta), summarised over the
study's seeds. It is eligible only where all three checks against BC hold:
- `judge_beats_bc`: its judge reward beats BC's with non-overlapping 95% intervals (candidate
  mean - ci95 > BC mean + ci95; with a single seed the intervals are points);
- `ndcg_not_worse`: its mean NDCG@10 on the held-out high-reward targets is at least
  (1 - `ndcg_margin`) times the reference, the better of BC's and the pretrained policy's (the
  policy serving when nothing is registered); relative, because NDCG@10 lives on different scales
  per dataset (0.31 on the default world, 0.10 on ML-100K);
- `kl_within_bound`: its mean KL to the pretrained policy is at most `max_kl`.
The eligible candidate with the highest mean judge reward is registered in the MLflow model
registry, with the alias `champion`, with the weights of its seed with the highest judge reward,
as the serving pyfunc (training/models/pyfunc.py). Where no candidate is eligible nothing
is registered, no stale champion is left on disk nor under the alias (batch recommendations then
serve the pretrained policy), and the reason names the checks each candidate failed. The judge is
the only reward that exists on real data, so the oracle never selects: on the simulator, true
satisfaction is reported next to the checks but is not one of them.

Why the guards: the judge alone can be gamed. On ML-100K the highest-judge candidate, PPO, was
below the pretrained policy on NDCG@10 with KL 1.58, and a judge-only rule shipped that reward
hacker. The defaults (PosttrainSettings): `ndcg_margin` 0.03 is about twice the relative 95%
half-width of BC's NDCG@10 over 3 seeds (1.5% on the default world, 1.7% on ML-100K), so it
tolerates seed noise but not a real ranking loss (an absolute margin of 0.01 let IPO, 5.5% below
BC on ML-100K, through); `max_kl` 1.0 nat: BC's own drift from the pretrained policy is about 0.09
and A-SFT beta=0.1's about 0.35, while the reward hacker on ML-100K sat at 1.58.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import mlflow
import torch

from common.layout import DataLayout
from training.core.data import SequenceData
from training.models import SequenceEncoder
from training.models.pyfunc import log_policy
from training.posttrain.inputs import PosttrainInputs
from training.posttrain.study import PRETRAINED, TrainedPolicy, policy_model

CHAMPION_ALIAS = "champion"
CHECKS = ("judge_beats_bc", "ndcg_not_worse", "kl_within_bound")


def candidate_checks(
    row: dict[str, Any],
    bc: dict[str, Any],
    *,
    ndcg_margin: float,
    max_kl: float,
    pretrained: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One candidate's summary row against BC's (and the pretrained policy's NDCG@10): each
    check's values and whether it passed, and `eligible` (all passed); on the simulator also its
    true satisfaction, reported, not checked."""
    judge, bc_judge = row["judge_reward"], bc["judge_reward"]
    ndcg, kl = row["ndcg@10"]["mean"], row["kl"]["mean"]
    reference = {"bc": bc["ndcg@10"]["mean"]}
    if pretrained is not None and "ndcg@10" in pretrained:
        reference[PRETRAINED] = pretrained["ndcg@10"]["mean"]
    ref_name = max(reference, key=reference.__getitem__)
    ref = reference[ref_name]
    checks: dict[str, Any] = {
        "judge_beats_bc": {
            "candidate": judge["mean"],
            "candidate_ci95": judge["ci95"],
            "bc": bc_judge["mean"],
            "bc_ci95": bc_judge["ci95"],
            "passed": judge["mean"] - judge["ci95"] > bc_judge["mean"] + bc_judge["ci95"],
        },
        "ndcg_not_worse": {
            "candidate": ndcg,
            "reference": ref_name,
            "reference_value": ref,
            "relative_difference": ndcg / ref - 1.0 if ref else 0.0,
            "margin": ndcg_margin,
            "passed": ndcg >= (1.0 - ndcg_margin) * ref,
        },
        "kl_within_bound": {"candidate": kl, "bound": max_kl, "passed": kl <= max_kl},
    }
    checks["eligible"] = all(checks[c]["passed"] for c in CHECKS)
    if "true_satisfaction" in row and "true_satisfaction" in bc:
        a, b = row["true_satisfaction"]["mean"], bc["true_satisfaction"]["mean"]
        checks["true_satisfaction"] = {"candidate": a, "bc": b, "difference": a - b}
    return checks


def choose_champion(
    summary: dict[str, dict[str, Any]], *, ndcg_margin: float, max_kl: float
) -> dict[str, Any]:
    """The champion decision (the module docstring's rule): `label` (None where nothing is
    eligible), `registered`, `reason`, and `checks` (candidate label -> `candidate_checks`)."""
    candidates = [k for k, v in summary.items() if v["method"] not in (PRETRAINED, "bc")]
    if not candidates:
        reason = "no post-trained method besides BC"
        return {"label": None, "registered": False, "reason": reason, "checks": {}}
    if "bc" not in summary:
        reason = "BC is not in the study: nothing to compare against"
        return {"label": None, "registered": False, "reason": reason, "checks": {}}
    checks = {
        k: candidate_checks(
            summary[k],
            summary["bc"],
            ndcg_margin=ndcg_margin,
            max_kl=max_kl,
            pretrained=summary.get(PRETRAINED),
        )
        for k in candidates
    }
    rejected = "; ".join(
        f"{k} fails {', '.join(c for c in CHECKS if not checks[k][c]['passed'])}"
        for k in candidates
        if not checks[k]["eligible"]
    )
    eligible = [k for k in candidates if checks[k]["eligible"]]
    if not eligible:
        reason = f"no candidate passes every check ({', '.join(CHECKS)}): {rejected}"
        return {"label": None, "registered": False, "reason": reason, "checks": checks}
    best = max(eligible, key=lambda k: summary[k]["judge_reward"]["mean"])
    reason = f"{best}: the highest judge reward among candidates passing {', '.join(CHECKS)}"
    if rejected:
        reason += f"; rejected: {rejected}"
    return {"label": best, "registered": True, "reason": reason, "checks": checks}


def register_champion(
    model: SequenceEncoder, data: SequenceData, name: str, tags: dict[str, str]
) -> tuple[str, str]:
    """Log the model (the serving pyfunc, with `data`'s vocabulary) in the active MLflow run,
    register it and point alias `champion` at it."""
    info = log_policy(model, data, name="champion_model", registered_model_name=name)
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(name, CHAMPION_ALIAS, version)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    return name, version


def retire_champion(name: str) -> None:
    """Remove alias `champion` from `name` (where both exist): a stale champion is not served."""
    client = mlflow.MlflowClient()
    try:
        client.delete_registered_model_alias(name, CHAMPION_ALIAS)
    except mlflow.exceptions.MlflowException:
        pass  # no such model or alias: nothing is served under it


def save_champion(
    root: Path, inputs: PosttrainInputs, policy: TrainedPolicy, info: dict[str, Any]
) -> Path:
    """`<data>/models/champion/`: best.pt in the pretraining checkpoint format, vocab, card."""
    folder = DataLayout(root).champion
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    keep = ("model_config", "train_config", "n_items")
    checkpoint = {k: inputs.meta[k] for k in keep if k in inputs.meta}
    checkpoint |= {"model": policy.state, "vocab": inputs.data.vocab.to_dict()}
    torch.save(checkpoint, folder / "best.pt")
    inputs.data.vocab.save_json(folder / "vocab.json")
    (folder / "champion.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    return folder


def publish_champion(
    decision: dict[str, Any],
    policies: list[TrainedPolicy],
    inputs: PosttrainInputs,
    *,
    model_name: str,
    dataset: str,
    root: Path,
) -> dict[str, Any]:
    """Where the rule holds, register the candidate's best seed in the active MLflow run and
    save it under the data directory (the decision, completed with its card, is returned);
    otherwise remove any champion left on disk, so no stale champion is served."""
    if not decision["registered"]:
        shutil.rmtree(DataLayout(root).champion, ignore_errors=True)
        retire_champion(model_name)
        return decision
    best = max(
        (p for p in policies if p.label == decision["label"]),
        key=lambda p: p.metrics["judge_reward"],
    )
    card = {
        "dataset": dataset,
        "method": best.method,
        "beta": best.beta,
        "seed": best.seed,
        "policy_run_id": best.run_id,
    }
    tags = {k: str(v) for k, v in card.items()}
    model = policy_model(inputs, best.state)
    name, version = register_champion(model, inputs.data, model_name, tags)
    decision = decision | card | {"model_name": name, "model_version": version}
    save_champion(root, inputs, best, decision | {"metrics": best.metrics})
    return decision
