"""The policy as an MLflow pyfunc model on toy data (real MLflow, sqlite registry): a fresh
process loads it by alias and ranks as the policy in memory does, from the model's own code and
declared requirements; malformed requests are refused naming what is wrong; unknown titles are
ignored with a warning; seen and excluded titles never come back; no history, popularity."""

from __future__ import annotations

import ast
import json
import logging
import os
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from mlflow.exceptions import MlflowException

from common.tracking import start_run, tracking_uri
from tests.toy import toy_sequences
from training.core.config import ModelConfig
from training.core.data import build_dataset
from training.models import SequenceEncoder
from training.models.pyfunc import REQUIREMENTS, log_policy
from training.models.recommender import POLICY, POPULARITY, Recommender, Request, popularity_of
from training.posttrain.settings import PosttrainSettings
from training.serving.batch import BatchSettings

ROOT = Path(__file__).resolve().parent.parent
NAME = "toy-recommender"
HISTORIES = [
    (["i003", "i005", "i007", "i009"], [100.0, 200.0, 300.0, 400.0]),
    (["i010", "i001"], [1000.0, 50.0]),  # out of time order: sorted by the model
    (["i002"] * 3 + ["i011"], [10.0, 20.0, 30.0, 40.0]),
]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A toy policy (random weights: ranking equality needs no training) registered under
    NAME@champion in a fresh sqlite store."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("serving-model")
    data = build_dataset(toy_sequences(), max_len=3, split="leave_one_out",
                         valid_start=None, test_start=None)  # fmt: skip
    policy = SequenceEncoder(data.n_items, ModelConfig(d_model=16, n_blocks=1, max_len=3)).eval()
    with start_run("serving", "toy", root=root):
        info = log_policy(policy, data, name="model", registered_model_name=NAME)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(NAME, "champion", info.registered_model_version)
    popularity = popularity_of(data.events.items, data.n_items)
    return {
        "root": root,
        "recommender": Recommender(policy, data.vocab.items, popularity),
        "model": mlflow.pyfunc.load_model(f"models:/{NAME}@champion"),
    }


def frame(histories, request_ts: float = 500.0, **extra) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_ids": [h[0] for h in histories],
            "timestamps": [h[1] for h in histories],
            "request_ts": [request_ts] * len(histories),
            **extra,
        }
    )


def module_level_imports(path: Path) -> set[str]:
    """Top-level names a module imports when it loads (not inside functions: those run only if
    called, e.g. the MovieLens reader's)."""
    names: set[str] = set()
    stack: list[ast.AST] = [ast.parse(path.read_text())]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        stack.extend(ast.iter_child_nodes(node))
    return names


FRESH = """
import json, sys
from importlib.metadata import packages_distributions
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model("models:/{name}@champion")
out = model.predict(pd.DataFrame(json.loads(sys.argv[1])), params={{"k": 4}})
files = sorted({{getattr(m, "__file__", None) or "" for m in list(sys.modules.values())}})
print(json.dumps({{"items": out["item_ids"].map(list).tolist(),
                  "scores": out["scores"].map(list).tolist(),
                  "files": [f for f in files if f]}}))
"""


def test_a_fresh_process_loads_the_alias_and_ranks_as_the_policy_in_memory(toy):
    requests = [Request(i, t, 500.0) for i, t in HISTORIES]
    expected = toy["recommender"].recommend(requests, k=4)
    env = os.environ | {"MLFLOW_TRACKING_URI": tracking_uri(toy["root"])}
    env.pop("PYTHONPATH", None)  # the model's own code must be enough (code_paths)
    got = subprocess.run(
        [sys.executable, "-c", FRESH.format(name=NAME), frame(HISTORIES).to_json()],
        env=env, cwd=toy["root"], capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    result = json.loads(got.stdout.strip().splitlines()[-1])
    assert result["items"] == [r.item_ids for r in expected]
    for got_scores, rec in zip(result["scores"], expected, strict=True):
        assert got_scores == pytest.approx(rec.scores, abs=1e-6)
    # The policy's code came from the model's code directory, not from this checkout...
    ours = [f for f in result["files"] if f"{os.sep}training{os.sep}" in f]
    assert ours and all(f"{os.sep}code{os.sep}training{os.sep}" in f for f in ours), ours
    assert not any(f.startswith(str(ROOT / "training")) for f in ours)
    # ... and every distribution that code imports is a declared requirement.
    imported: set[str] = set()
    for path in ours + [f for f in result["files"] if f"{os.sep}code{os.sep}common" in f]:
        imported |= module_level_imports(Path(path))
    third_party = imported - set(sys.stdlib_module_names) - {"training", "common", "__future__"}
    # A name may come from several distributions (mlflow's namespace): one must be declared.
    providers = {name: set(packages_distributions().get(name, [name])) for name in third_party}
    undeclared = {n: d for n, d in providers.items() if not d & set(REQUIREMENTS)}
    assert not undeclared, undeclared


def test_the_model_has_a_signature_an_example_and_pinned_requirements(toy):
    meta = toy["model"].metadata
    assert meta.get_input_schema().input_names() == [
        "item_ids", "timestamps", "request_ts", "exclude"
    ]  # fmt: skip
    assert meta.get_params_schema().params[0].name == "k"
    assert meta.saved_input_example_info is not None
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}@champion"))
    pins = (local / "requirements.txt").read_text().split()
    assert {p.split("==")[0] for p in pins} >= set(REQUIREMENTS)
    assert not any("+" in p for p in pins)


def test_malformed_requests_are_refused_naming_what_is_wrong(toy):
    model = toy["model"]
    cases = [
        (frame(HISTORIES).drop(columns="timestamps"), r"missing inputs \['timestamps'\]"),
        (frame([(["i001"], [1.0, 2.0])]), "item_ids has 1 entries but timestamps 2"),
        (frame([(["i001"], ["noon"])]), "timestamps"),
        (frame([([1], [1.0])]), "item_ids"),
    ]
    for bad, message in cases:
        with pytest.raises(MlflowException, match=message):
            model.predict(bad)
    with pytest.raises(MlflowException, match="k must be a positive integer, got 0"):
        model.predict(frame(HISTORIES), params={"k": 0})


def test_unknown_titles_are_ignored_with_a_warning(toy, caplog):
    model = toy["model"]
    known = model.predict(frame(HISTORIES[:1]))
    with caplog.at_level(logging.WARNING):
        items, times = HISTORIES[0]
        mixed = model.predict(frame([(["new-title", *items], [50.0, *times])]))
    assert "new-title" in caplog.text
    assert list(mixed["ignored_item_ids"][0]) == ["new-title"]
    assert list(mixed["item_ids"][0]) == list(known["item_ids"][0])


def test_seen_and_excluded_titles_never_come_back_and_no_history_gets_popularity(toy):
    recommender = toy["recommender"]
    n = len(recommender.items)
    items, times = HISTORIES[2]
    (everything,) = recommender.recommend([Request(items, times, 50.0, exclude=["i004"])], k=n)
    assert everything.source == POLICY
    assert len(everything.item_ids) == n - 2 - 1  # two distinct seen titles, one excluded
    assert not {"i002", "i011", "i004"} & set(everything.item_ids)
    cold, unknown = recommender.recommend(
        [Request([], [], 0.0), Request(["nope"], [1.0], 2.0)], k=5
    )
    top = [recommender.items.ids[i - 1] for i in recommender.popularity.argsort(descending=True)]
    assert cold.source == unknown.source == POPULARITY
    assert cold.item_ids == unknown.item_ids == top[:5]


def test_batch_serves_the_name_the_champion_is_registered_under_and_asft_is_installed():
    assert BatchSettings().model_name == PosttrainSettings().registered_model_name
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["asft"] == "training.serving.cli:app"
    got = subprocess.run(
        [sys.executable, "-m", "training.serving.cli", "recommend", "--help"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert got.returncode == 0 and "--user" in got.stdout
