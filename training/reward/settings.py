"""The reward stage's settings: ensemble sizes, head shape, training budget and evaluation sizes,
each with its default and its one-line doc (the Dagster run config is derived from them)."""

from __future__ import annotations

from dataclasses import dataclass

from common.settings import check_choices, setting
from training.core.device import DeviceName, check_device
from training.reward.model import HeadConfig
from training.reward.train import RewardTrainConfig


@dataclass(frozen=True)
class RewardSettings:
    """Ensemble sizes, head shape, training budget. The frozen encoder reads at most
    `max_train_events` training events (both halves together), so the stage stays in minutes."""

    members: int = setting(5, "members of the trainer's ensemble (seeds + bootstrap of users)")
    judge_members: int = setting(5, "members of the judge's ensemble (the other half of users)")
    embed_dim: int = setting(32, "width of the two towers' meeting point (the dot product)")
    hidden: int = setting(64, "hidden units of each tower's MLP")
    epochs: int = setting(6, "most epochs per member")
    patience: int = setting(2, "epochs without a better validation RMSE before a member stops")
    batch_size: int = setting(1024, "training events per batch")
    lr: float = setting(3e-3, "AdamW learning rate")
    weight_decay: float = setting(1e-4, "AdamW weight decay")
    bootstrap: bool = setting(True, "members train on Poisson(1) bootstrap weights of the users")
    max_train_events: int | None = setting(
        300_000, "training events over both halves, read once by the frozen encoder (None: all)"
    )
    max_valid_events: int | None = setting(40_000, "validation events (None: every one)")
    max_test_events: int | None = setting(None, "test events (None: every rewarded test event)")
    eval_context: int | None = setting(
        None, "earlier events every test target sees (None: max_len // 2)"
    )
    feast_check_rows: int = setting(
        1000, "random (entity, day) cells per table re-read through Feast and compared"
    )
    num_threads: int = setting(
        1, "torch threads: the heads' matmuls are tiny and OpenMP threads wait on each other"
    )
    seed: int = setting(0, "seed of the event samples, the Feast check and the trainer (judge: +1)")
    device: DeviceName = setting(
        "auto", "where the encoder's states, the heads' training and scoring run: auto = CUDA "
        "when a GPU is visible, else CPU; cuda fails without one",
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_choices(self)
        check_device(self.device, "RewardSettings.device")

    def head_config(self, members: int, seed: int) -> HeadConfig:
        return HeadConfig(members, self.embed_dim, self.hidden, seed)

    def train_config(self, seed: int) -> RewardTrainConfig:
        return RewardTrainConfig(
            epochs=self.epochs,
            patience=self.patience,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            bootstrap=self.bootstrap,
            seed=seed,
        )
