"""The device option (training/core/device.py) on a machine without a GPU: auto resolves to the
CPU, an explicit cuda fails at settings/resolve time with an error saying how to fix it, the CPU
path is bit-identical whatever the option says, and the GPU check script says there is no GPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.toy import toy_sequences
from training.core.config import ModelConfig, TrainConfig
from training.core.data import build_dataset
from training.core.device import (
    CPU,
    MixedPrecision,
    ddp_backend,
    device_of,
    on_device,
    rank_device,
    resolve_device,
    state_on_cpu,
    to_device,
)
from training.posttrain.advantages import compute_advantages
from training.posttrain.config import PosttrainConfig
from training.posttrain.finetune import finetune
from training.posttrain.settings import AdvantagesSettings, PosttrainSettings
from training.pretrain.loop import pretrain
from training.pretrain.settings import PretrainSettings
from training.reward.settings import RewardSettings

ROOT = Path(__file__).resolve().parents[1]
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="asserts the no-GPU behaviour")
# Serving runs the registered MLflow model, which scores where it is served (CPU here).
SETTINGS = (PretrainSettings, RewardSettings, AdvantagesSettings, PosttrainSettings)
QUIET = lambda _: None  # noqa: E731
MCFG = ModelConfig(kind="hstu", d_model=16, n_blocks=1, n_heads=2, max_len=8, dropout=0.1)


@NO_GPU
def test_auto_resolves_to_the_cpu_here_and_every_stage_defaults_to_auto():
    assert resolve_device("auto") == CPU and resolve_device("cpu") == CPU
    assert all(cls().device == "auto" for cls in SETTINGS)


@NO_GPU
@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_explicit_cuda_without_a_gpu_fails_when_the_settings_are_made(cls):
    with pytest.raises(RuntimeError) as e:
        cls(device="cuda")
    msg = str(e.value)
    assert f"{cls.__name__}.device = 'cuda'" in msg and "no CUDA GPU" in msg
    assert "set " in msg and "'auto' or 'cpu'" in msg  # how to fix it


@NO_GPU
def test_explicit_cuda_fails_before_any_work():
    data, lines = build_dataset(toy_sequences(), max_len=8), []
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        pretrain(data, MCFG, TrainConfig(epochs=1), log=lines.append, device="cuda")
    assert lines == []  # nothing was built, trained or logged
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        resolve_device("cuda", "PretrainSettings.device")


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_an_unknown_device_is_refused_naming_the_choices(cls):
    with pytest.raises(ValueError, match="expected one of 'auto', 'cpu', 'cuda'"):
        cls(device="gpu")
    with pytest.raises(ValueError, match=r"device = 'mps': expected one of 'auto', 'cpu', 'cuda'"):
        resolve_device("mps")


def test_ddp_backend_is_nccl_on_cuda_and_gloo_on_cpu():
    assert ddp_backend(CPU) == "gloo"
    assert ddp_backend(torch.device("cuda")) == "nccl"
    assert ddp_backend(torch.device("cuda", 1)) == "nccl"
    assert rank_device(CPU, 3) == CPU  # every CPU rank shares the CPU


@NO_GPU
def test_a_cuda_rank_without_its_gpu_is_refused():
    with pytest.raises(RuntimeError, match="local rank 0 has no GPU"):
        rank_device(torch.device("cuda"), 0)


def test_moving_a_batch_to_the_cpu_is_the_identity():
    b = {"item_ids": torch.arange(6).view(2, 3), "target_index": np.arange(6)}
    assert to_device(b, CPU) is b
    state = {"w": torch.ones(2)}
    assert state_on_cpu(state) is state


def test_mixed_precision_is_a_no_op_on_the_cpu():
    amp = MixedPrecision(CPU)
    assert amp.dtype is None and amp.scaler is None
    w = torch.ones(3, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.5)
    with amp.autocast():
        loss = (w * torch.arange(3.0)).sum()
    assert loss.dtype == torch.float32
    amp.backward(loss)
    amp.unscale_(opt)
    amp.step(opt)
    assert torch.equal(w.detach(), torch.tensor([1.0, 0.5, 0.0]))


def test_on_device_leaves_the_model_where_it_was_and_ignores_non_modules():
    model, fake = torch.nn.Linear(2, 2), object()
    with on_device(model, CPU) as m:
        assert m is model and device_of(m) == CPU
    with on_device(fake, CPU) as f:
        assert f is fake and device_of(f) == CPU


def _states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a
    )


def test_pretraining_on_cpu_and_auto_is_bit_identical_to_the_default_path(tmp_path):
    torch.set_num_threads(1)
    data = build_dataset(toy_sequences(), max_len=8)
    cfg = TrainConfig(epochs=2, batch_size=8, num_negatives=8, in_batch_negatives=4, seed=3)
    weights = np.random.default_rng(0).uniform(0.5, 2.0, len(data.events.items))
    runs = {}
    for name, kw in {"default": {}, "cpu": {"device": "cpu"}, "auto": {"device": "auto"}}.items():
        runs[name] = pretrain(data, MCFG, cfg, tmp_path / name, QUIET, event_weights=weights, **kw)
    ref = runs.pop("default")
    for name, r in runs.items():
        assert _states_equal(r.best_state, ref.best_state), name
        assert _states_equal(r.final_state, ref.final_state), name
        assert r.metrics == ref.metrics and [h["loss"] for h in r.history] == [
            h["loss"] for h in ref.history
        ], name
        assert device_of(r.model) == CPU


def test_post_training_on_cpu_and_auto_is_bit_identical_to_the_default_path():
    from tests.test_training_posttrain_methods import reward_model, tiny_data, tiny_policy

    torch.set_num_threads(1)
    data = tiny_data()
    policy, rm = tiny_policy(data), reward_model(data)
    advs = [
        compute_advantages(policy, rm, data, AdvantagesSettings(batch_size=32, device=d), log=QUIET)
        for d in ("cpu", "auto")
    ]
    assert all(np.array_equal(advs[0].advantage, a.advantage, equal_nan=True) for a in advs)
    cfg = PosttrainConfig("asft", weight_clip=20.0, self_normalise=True, steps=3, batch_size=8,
                          lr=1e-2, num_negatives=8, beta=1.0)  # fmt: skip
    states = [
        finetune(
            policy, data, cfg, advantages=advs[0], reward_model=rm, log=QUIET, **kw
        ).state_dict()
        for kw in ({}, {"device": "cpu"}, {"device": "auto"})
    ]
    assert all(_states_equal(states[0], s) for s in states[1:])
    assert all(v.device == CPU for v in states[0].values())


@NO_GPU
def test_the_gpu_check_says_there_is_no_gpu_and_exits_0():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no CUDA GPU visible to torch")
