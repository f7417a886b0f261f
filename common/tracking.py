"""MLflow tracking on a sqlite backend under the data directory (the file store is deprecated).

Stages open runs through `start_run`; `make mlflow-ui` serves the same store.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.paths import layout

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow  # noqa: E402  (telemetry must be off before import)


def mlflow_dir(root: Path | None = None) -> Path:
    path = layout(root).mlflow
    path.mkdir(parents=True, exist_ok=True)
    return path


def tracking_uri(root: Path | None = None) -> str:
    return f"sqlite:///{mlflow_dir(root) / 'mlflow.db'}"


def artifact_root(root: Path | None = None) -> Path:
    return mlflow_dir(root) / "artifacts"


def use_local_store(root: Path | None = None) -> str:
    """Point MLflow (tracking and registry) at the data directory's store; returns the URI."""
    uri = tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def experiment_id(name: str, root: Path | None = None) -> str:
    """The experiment's id, creating it with its artifacts under the data directory."""
    use_local_store(root)
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = (artifact_root(root) / name).as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


@contextmanager
def start_run(
    experiment: str, run_name: str, tags: dict[str, str] | None = None, root: Path | None = None
) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run in `experiment` on the local store; ends FAILED if the body raises."""
    exp_id = experiment_id(experiment, root)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=tags) as run:
        yield run
