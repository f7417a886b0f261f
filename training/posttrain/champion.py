"""The champion rule, and the champion's registration and files.

The candidate is the post-trained configuration (any method but BC, at any beta) with the highest
mean judge reward across seeds: the judge is the only criterion that exists on real data, so the
oracle never selects. It is registered in the MLflow model registry, with the alias `champion`,
only where its mean judge reward is higher than BC's and, on the simulator, its mean true
satisfaction too; with `require_significant` the 95% intervals must also not overlap. The weights
registered are those of the candidate's seed with the highest judge reward. Otherwise nothing is
registered, no stale champion is left on disk, and the report says why.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import mlflow
import torch

from common.layout import DataLayout
from training.models import SequenceEncoder
from training.posttrain.inputs import PosttrainInputs
from training.posttrain.study import PRETRAINED, TrainedPolicy, policy_model

# The model classes travel with the registered model: the whole `training` package.
TRAINING_PACKAGE = Path(__file__).resolve().parents[1]


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
        code_paths=[str(TRAINING_PACKAGE)],
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
    name, version = register_champion(policy_model(inputs, best.state), model_name, tags)
    decision = decision | card | {"model_name": name, "model_version": version}
    save_champion(root, inputs, best, decision | {"metrics": best.metrics})
    return decision
