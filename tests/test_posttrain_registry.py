"""The post-training method registry, the settings that document themselves, and the shared
weighted NLL's negative masking (seen_scope) against a brute-force reference."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
import torch

from common.settings import doc_of
from tests.test_training_posttrain_methods import STUDY, tiny_data, tiny_policy
from training.core.losses import (
    negative_mask,
    sample_negatives,
    sampled_softmax_loss,
    seen_negatives,
)
from training.posttrain.batch import training_batch
from training.posttrain.config import MethodName, PosttrainConfig
from training.posttrain.methods import BETA_METHODS, REGISTRY
from training.posttrain.methods.base import StepContext, sampled_nll, supervised
from training.posttrain.settings import AdvantagesSettings, PosttrainSettings

torch.set_num_threads(1)


def test_method_name_is_the_registry():
    assert typing.get_args(MethodName) == tuple(REGISTRY)
    assert all(name == m.name for name, m in REGISTRY.items())


def test_registry_holds_the_method_facts():
    def having(fact: str) -> set[str]:
        return {n for n, m in REGISTRY.items() if getattr(m, fact)}

    assert having("needs_reward_model") == {"dpo", "ipo", "ppo"}
    assert having("full_catalogue") == {"dpo", "ipo", "cql", "ppo"}
    assert having("no_dropout") == {"dpo", "ipo", "ppo"}
    assert set(BETA_METHODS) == having("uses_beta") == {
        "asft", "exprsft", "dpo", "ipo", "cql", "ppo"
    }  # fmt: skip
    assert having("event_weights") == {"asft", "rwbc", "exprsft"}
    assert having("needs_advantages") == {"asft"}
    assert REGISTRY["rwbc"].step is REGISTRY["asft"].step  # RW-BC differs in its weights only
    assert REGISTRY["exprsft"].step is REGISTRY["asft"].step  # and so does Exp-RSFT


@pytest.mark.parametrize(
    "module",
    ["config", "methods.base", "methods.asft", "methods.exprsft", "finetune", "settings", "stage"],
)
def test_each_module_imports_on_its_own(module):
    subprocess.run([sys.executable, "-c", f"import training.posttrain.{module}"], check=True)


def test_settings_document_themselves_and_refuse_unknown_choices():
    for cls in (PosttrainSettings, AdvantagesSettings):
        assert all(doc_of(f) for f in dataclasses.fields(cls)), cls.__name__
    with pytest.raises(ValueError, match="'sft': expected one of 'bc', 'asft'"):
        PosttrainSettings(methods=("bc", "sft"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seen_scope"):
        PosttrainConfig("bc", seen_scope="user", **STUDY)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="logits_matmul"):
        PosttrainConfig("bc", logits_matmul="float16", **STUDY)  # type: ignore[arg-type]


def test_a_run_takes_the_study_values_from_the_settings():
    s = PosttrainSettings()
    cfg = s.run_config("asft", 0.3, seed=2, temperature=0.05)
    for name in ("steps", "batch_size", "lr", "weight_clip", "self_normalise"):
        assert getattr(cfg, name) == getattr(s, name), name
    assert (cfg.beta, cfg.seed, cfg.temperature) == (0.3, 2, 0.05)
    assert s.run_config("bc", None, 0, 0.1).beta == PosttrainConfig("bc", **STUDY).beta


def _brute_force_seen(data, b, negs: torch.Tensor, scope: str) -> torch.Tensor:
    """[B, L, K] negative k seen by row b before its target at l: the window's inputs up to l,
    or the user's whole history before the target."""
    ev = data.events
    out = torch.zeros(*b["item_ids"].shape, len(negs), dtype=torch.bool)
    for r, i in zip(*np.nonzero(b["target_index"] >= 0), strict=True):
        t = int(b["target_index"][r, i])
        start = ev.offsets[np.searchsorted(ev.offsets, t, side="right") - 1]
        seen = (
            set(ev.items[start:t].tolist())
            if scope == "history"
            else set(b["item_ids"][r, : i + 1].tolist()) - {0}
        )
        out[r, i] = torch.tensor([int(n) in seen for n in negs])
    return out


def test_window_scope_is_the_former_mask_and_history_masks_the_pre_window_history():
    data = tiny_data()  # windows of 6 over histories of 10: most windows have a prior history
    b = training_batch(data, np.arange(len(data.windows)))
    assert len(b["prior_items"]) > 0
    negs = torch.arange(1, data.n_items + 1)
    window = PosttrainConfig("bc", **STUDY)
    history = dataclasses.replace(window, seen_scope="history")
    assert torch.equal(negative_mask(b, negs, window), seen_negatives(b["item_ids"], negs))
    for cfg in (window, history):
        expect = _brute_force_seen(data, b, negs, cfg.seen_scope)
        got = negative_mask(b, negs, cfg)
        mask = supervised(b)
        assert torch.equal(got[mask], expect[mask]), cfg.seen_scope
    assert (expect & ~negative_mask(b, negs, window))[supervised(b)].any()  # history adds some


def test_weighted_nll_masks_what_seen_scope_says():
    data = tiny_data()
    policy = tiny_policy(data)
    b = training_batch(data, np.arange(len(data.windows)))
    mask = supervised(b)
    w = torch.rand(int(mask.sum()), generator=torch.Generator().manual_seed(0))
    losses = {}
    for scope in ("window", "history"):
        cfg = PosttrainConfig("asft", num_negatives=16, seen_scope=scope, **STUDY)
        ctx = StepContext(cfg, policy, data.n_items, torch.Generator().manual_seed(1))
        with torch.no_grad():
            got = sampled_nll(policy, b, ctx, w)
            h = policy(b["item_ids"], b["timestamps"], b["decision_ts"])
            targets = b["target_ids"][mask]
            negs = sample_negatives(targets, data.n_items, 16,
                                    generator=torch.Generator().manual_seed(1))  # fmt: skip
            drop = _brute_force_seen(data, b, negs, scope)[mask]
            emb = policy.item_embeddings()
            expect = sampled_softmax_loss(
                h[mask], targets, emb, negs, cfg.temperature, w, drop, normalise="weights"
            )
        assert torch.equal(got, expect), scope
        losses[scope] = got.item()
    assert losses["window"] != losses["history"]


def test_the_champion_ships_the_whole_training_package():
    from training.models.pyfunc import CODE_PATHS

    shipped = {Path(p).name: Path(p) for p in CODE_PATHS}
    assert {"training", "common"} <= set(shipped)
    assert (shipped["training"] / "models").is_dir() and (
        shipped["training"] / "posttrain"
    ).is_dir()
