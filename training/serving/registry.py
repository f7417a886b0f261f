"""Which policy serves: the registered model's alias (`models:/<name>@champion`), else the
pretrained policy's logged model (`runs:/<run id>/model`), resolved to a fixed version first so
the version recorded is the version loaded even if the alias moves meanwhile."""

from __future__ import annotations

# common.tracking turns MLflow's telemetry off before importing it, so it comes first.
from common.tracking import use_local_store  # isort: skip

import json
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from common.layout import DataLayout

PRETRAINED = "pretrained_policy"
# The artifact name the pretraining stage logs each run's policy under.
PRETRAINED_ARTIFACT = "model"


@dataclass(frozen=True)
class ServedModel:
    uri: str  # a fixed version: models:/<name>/<version> or runs:/<run id>/model
    name: str  # the registered model, or PRETRAINED
    version: str  # the registered version, or run:<run id>
    alias: str | None  # the alias it was resolved from, None for the pretrained fallback


def champion_version(name: str, alias: str) -> str | None:
    """The version `alias` points at, None where the model or the alias does not exist."""
    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def resolve_policy(root: Path, name: str, alias: str = "champion") -> ServedModel:
    """The version `name@alias` points at in the data directory's registry; where nothing is
    registered under it, the pretrained policy's run."""
    use_local_store(root)
    version = champion_version(name, alias)
    if version is not None:
        return ServedModel(f"models:/{name}/{version}", name, version, alias)
    run_file = DataLayout(root).pretrained_policy / "mlflow_run.json"
    if not run_file.exists():
        raise FileNotFoundError(
            f"no model registered as {name}@{alias} and no pretrained policy run ({run_file}): "
            "materialize pretrained_policy first"
        )
    run_id = json.loads(run_file.read_text())["run_id"]
    return ServedModel(f"runs:/{run_id}/{PRETRAINED_ARTIFACT}", PRETRAINED, f"run:{run_id}", None)


def load_policy(served: ServedModel) -> mlflow.pyfunc.PyFuncModel:
    """The pyfunc model; refuses a model logged before the policy had a serving signature."""
    model = mlflow.pyfunc.load_model(served.uri)
    schema = model.metadata.get_input_schema()
    if schema is None or "item_ids" not in schema.input_names():
        raise ValueError(
            f"{served.uri} is not a serving policy (no item_ids/timestamps signature): it was "
            "logged by an older pipeline; re-materialize pretrained_policy (or the champion)"
        )
    return model
