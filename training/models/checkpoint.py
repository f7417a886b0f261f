"""A trained encoder back from disk: the checkpoint format every stage hands on.

`best.pt` holds the model's state, its configs, `n_items` and the vocabulary; pretraining writes
it (training/pretrain/checkpoint.py), the post-training champion reuses the format, and the reward
model, post-training and serving read it here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from common.layout import DataLayout
from common.warehouse import connect_read_only, training_inputs
from training.core.config import ModelConfig
from training.core.data import SequenceData, Vocab, build_dataset
from training.models.encoder import SequenceEncoder


def load_checkpoint(path: str | Path) -> tuple[SequenceEncoder, Vocab, dict[str, Any]]:
    """A trained encoder (eval mode), its vocab and the checkpoint's metadata.

    `path` is a `best.pt` / `last.pt` file or a checkpoint directory (then `best.pt` is read).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    # Onto the CPU whatever device trained it; callers move the model where they score.
    ck = torch.load(path, weights_only=path.name != "last.pt", map_location="cpu")
    model = SequenceEncoder(ck["n_items"], ModelConfig.from_dict(ck["model_config"]))
    model.load_state_dict(ck["model"])
    model.eval()
    meta = {k: v for k, v in ck.items() if k not in ("model", "optimizer", "rng", "vocab")}
    return model, Vocab.from_dict(ck["vocab"]), meta


def load_policy_on_temporal_split(
    root: Path,
) -> tuple[SequenceEncoder, Vocab, dict[str, Any], SequenceData]:
    """The pretrained policy (eval mode), its vocab and checkpoint metadata, and the warehouse
    sequences on the temporal split in the policy's ids: what the later stages start from."""
    layout = DataLayout(root)
    checkpoint = layout.pretrained_policy / "best.pt"
    if not checkpoint.exists():
        raise FileNotFoundError(f"no pretrained policy at {checkpoint}: materialize it first")
    policy, vocab, meta = load_checkpoint(checkpoint)
    with connect_read_only(layout.warehouse) as con:
        sequences, valid_start, test_start = training_inputs(con)
    data = build_dataset(
        sequences,
        max_len=policy.cfg.max_len,
        split="temporal",
        valid_start=valid_start,
        test_start=test_start,
        vocab=vocab,
    )
    return policy, vocab, meta, data
