"""Pretraining checkpoints: what a run writes after every epoch, and what makes a checkpoint
directory resumable by a later call.

Files in a checkpoint directory: `last.pt` (everything needed to resume: weights, optimizer, the
moving average, the run state and every RNG state), `best.pt` (best weights, configs, vocab,
valid metrics: what downstream stages load, via `training.models.checkpoint`) and `vocab.json`.
Every file is written atomically, so a run killed mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.core.config import ModelConfig, TrainConfig
from training.core.data import SequenceData
from training.core.device import state_on_cpu
from training.models import SequenceEncoder

LAST = "last.pt"
BEST = "best.pt"
VOCAB = "vocab.json"

# Settings a resumed run may change: more epochs, another thread count.
_RESUMABLE = ("epochs", "num_threads")


@dataclass
class RunState:
    """Where a run is: stored in `last.pt` and restored on resume."""

    epoch: int = 0
    best_metric: float = float("-inf")
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped: bool = False
    train_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)

    def recorded_valid(self) -> dict[str, float] | None:
        """The best weights' validation metrics as the epoch that chose them recorded them (the
        same weights, data and evaluation), so the final report need not evaluate valid again;
        None where no epoch recorded them (none improved, or not the main rank)."""
        row = next((r for r in self.history if r.get("epoch") == self.best_epoch), {})
        valid = {k.removeprefix("valid_"): v for k, v in row.items() if k.startswith("valid_")}
        return valid or None


def clone_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state.items()}


def atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a kill mid-write leaves the previous checkpoint intact


def _resume_identity(train_config: dict[str, Any]) -> dict[str, Any]:
    # Through from_dict: options missing from an older checkpoint read as their defaults, and
    # betas compare as a tuple however they were stored.
    d = TrainConfig.from_dict(train_config).to_dict()
    return {k: v for k, v in d.items() if k not in _RESUMABLE}


def run_key(model_cfg: ModelConfig, cfg: TrainConfig) -> str:
    """Short hash of what a checkpoint must match to be resumed: a checkpoint directory named by
    it resumes the same run and never collides with a run of other settings."""
    blob = json.dumps([model_cfg.to_dict(), _resume_identity(cfg.to_dict())], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def check_same_run(ck: dict[str, Any], model_cfg: ModelConfig, cfg: TrainConfig, n: int) -> None:
    """Raise unless the checkpoint `ck` was written by a run of these settings and catalogue."""
    if ck["model_config"] != model_cfg.to_dict() or ck["n_items"] != n:
        raise ValueError("checkpoint_dir holds a run with another model config or catalogue")
    if _resume_identity(ck["train_config"]) != _resume_identity(cfg.to_dict()):
        raise ValueError("checkpoint_dir holds a run with another train config")


def read_last(ckdir: Path) -> dict[str, Any]:
    # Our own file (holds numpy RNG state), hence weights_only=False. Onto the CPU: a run
    # trained on a GPU resumes anywhere (load_state_dict moves the weights to the model's).
    return torch.load(ckdir / LAST, weights_only=False, map_location="cpu")


def read_best_state(ckdir: Path, default: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The best weights of the run in `ckdir`; `default` where no epoch improved yet."""
    if (ckdir / BEST).exists():
        return torch.load(ckdir / BEST, weights_only=True, map_location="cpu")["model"]
    return default


def resume(
    ckdir: Path,
    model: SequenceEncoder,
    scored: SequenceEncoder,
    opt: torch.optim.Optimizer,
    mcfg: ModelConfig,
    cfg: TrainConfig,
    n_items: int,
    best_state: dict[str, torch.Tensor],
) -> tuple[RunState, dict[str, torch.Tensor]]:
    """Load `last.pt` into the model, its moving average and the optimizer, restore every RNG;
    the run state and the best weights so far."""
    ck = read_last(ckdir)
    check_same_run(ck, mcfg, cfg, n_items)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    if scored is not model:
        scored.load_state_dict(ck["ema"])
    st = RunState(**ck["state"])
    torch.set_rng_state(ck["rng"]["torch"])
    np.random.set_state(ck["rng"]["numpy"])
    random.setstate(ck["rng"]["python"])
    return st, read_best_state(ckdir, best_state)


def save_checkpoint(
    ckdir: Path,
    model: SequenceEncoder,
    scored: SequenceEncoder,
    opt: torch.optim.Optimizer,
    st: RunState,
    mcfg: ModelConfig,
    cfg: TrainConfig,
    data: SequenceData,
    improved: bool,
    row: dict[str, Any],
) -> None:
    """`best.pt` when the epoch improved, then `last.pt`."""
    common = {
        "model_config": mcfg.to_dict(),
        "train_config": cfg.to_dict(),
        "n_items": data.n_items,
        "vocab": data.vocab.to_dict(),
    }
    if improved:  # written before last.pt, so last.pt never points past a missing best.pt
        # The hand-off to later stages holds CPU tensors whatever device trained it.
        weights = state_on_cpu(scored.state_dict())
        best = {"model": weights, "epoch": st.epoch, "valid_metrics": row, **common}
        atomic_save(best, ckdir / BEST)
    rng = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    last = {
        "model": model.state_dict(),
        **({"ema": scored.state_dict()} if scored is not model else {}),
        "optimizer": opt.state_dict(),
        "state": vars(st),
        "rng": rng,
        **common,
    }
    atomic_save(last, ckdir / LAST)
