"""One tiny built world for the modules that start from a prepared data directory.

The corrupt-input, robustness and serving tests each need the same thing before their own steps:
raw logs, the warehouse, the feature store and a pretrained policy. `main_job` builds it once per
test session (the first module to ask builds it, under a lock the pytest-xdist workers share), and
each module works on its own copy (`copy_world`), never on the original.

A copy is not a moved data directory: the feature store's config and registry, and MLflow's
artifact locations, name the original's absolute paths. So a copy reads the original's pretrained
run and offline features (the same bytes), and a module that writes to Feast first applies the
registry again in its copy (`REAPPLY`), which points the store at the copy.
"""

from __future__ import annotations

import os
import shutil
from contextlib import AbstractContextManager
from pathlib import Path
from unittest import mock

import dagster as dg
from filelock import FileLock

from common.paths import DATA_DIR_ENV
from orchestration.definitions import defs

TINY = {"n_users": 40, "n_items": 120, "n_events": 1500, "n_days": 21, "seed": 1}
PRETRAIN = {"epochs": 2, "patience": 1}
# Raw, the warehouse, the feature store, the pretrained policy and its gate, the Data Docs: not the
# reward model nor anything after it.
WORLD = dg.AssetSelection.all() - dg.AssetSelection.assets("pretrained_policy").downstream(
    include_self=False
) | dg.AssetSelection.assets("data_quality_report")
# What a copy must run again before it writes to Feast (see the module docstring).
REAPPLY = {"feature_registry", "online_features"}


def world_keys() -> set[str]:
    return {k.to_user_string() for k in WORLD.resolve(defs.get_repository_def().asset_graph)}


def data_dir_set_to(root: Path) -> AbstractContextManager:
    """ASFT_DATA_DIR pointed at root for the block, then as it was."""
    return mock.patch.dict(os.environ, {DATA_DIR_ENV: str(root)})


def build_world(root: Path) -> None:
    graph = defs.get_repository_def().asset_graph
    config = {
        "ops": {
            "raw_watch_logs": {"config": TINY},
            "pretrained_policy": {"config": PRETRAIN},
        }
    }
    with data_dir_set_to(root), dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("main_job").execute_in_process(
            run_config=config, instance=instance, asset_selection=list(WORLD.resolve(graph))
        )
    assert result.success, "the shared tiny world did not build"


def shared_world(base: Path) -> Path:
    """The built world under base (the session's temporary root, shared by the workers); built
    by the first caller, the others wait on the lock."""
    root, built = base / "tiny-world", base / "tiny-world.built"
    with FileLock(str(base / "tiny-world.lock")):
        if not built.exists():
            shutil.rmtree(root, ignore_errors=True)  # a failed build's leftovers
            build_world(root)
            built.touch()
    return root


def copy_world(world: Path, dst: Path) -> Path:
    shutil.copytree(world, dst)
    return dst
