"""What the post-training stage loads: the pretrained policy on the temporal split, the reward
ensembles and the advantages, each from its place under the data directory (DataLayout)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.core.data import SequenceData
from training.models import SequenceEncoder
from training.models.checkpoint import load_policy_on_temporal_split
from training.posttrain.advantages import EventAdvantages, read_advantages
from training.reward.contract import CatalogueRewardModel
from training.reward.model import load_reward_ensemble


@dataclass
class PosttrainInputs:
    policy: SequenceEncoder  # the pretrained policy, eval mode
    meta: dict[str, Any]  # its checkpoint's metadata (configs, n_items)
    data: SequenceData  # temporal split, the policy's vocab

    @property
    def temperature(self) -> float:
        return float(self.meta.get("train_config", {}).get("temperature", 0.1))


def load_posttrain_inputs(root: Path) -> PosttrainInputs:
    """The pretrained policy and the warehouse sequences on the temporal split, in its ids."""
    policy, _, meta, data = load_policy_on_temporal_split(root)
    return PosttrainInputs(policy, meta, data)


def load_ensemble(directory: Path) -> CatalogueRewardModel:
    """A saved reward ensemble (DataLayout(root).reward_model or .reward_judge)."""
    if not directory.exists():
        raise FileNotFoundError(f"no reward ensemble at {directory}: materialize reward_model")
    return load_reward_ensemble(directory)


def load_advantages(path: Path, data: SequenceData) -> EventAdvantages:
    """The `advantages` asset's Parquet (DataLayout(root).advantages), aligned to `data`."""
    if not path.exists():
        raise FileNotFoundError(f"no advantages at {path}: materialize `advantages` first")
    return read_advantages(path, data)
