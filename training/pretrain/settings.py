"""The pretraining stage's settings: what to train and the tuned options it may override, each
with its default and its one-line doc (the Dagster run config is derived from them)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from common.settings import check_choices, setting
from training.core.config import ModelConfig, TrainConfig
from training.core.device import DeviceName, check_device

# TrainConfig options a stage setting overrides where it is not None.
_TUNED = ("num_negatives", "temperature", "lr", "ema_decay", "logits_matmul", "seen_scope")


@dataclass(frozen=True)
class PretrainSettings:
    """What to train. The first kind, trained on `policy_split` with the first seed, is the policy
    handed to post-training; the other kinds, splits and seeds are for the comparison table.
    None = the ModelConfig/TrainConfig default: dataset-specific tuning lives in configs/*.yaml, so
    the default simulator run keeps the default cost per step."""

    kinds: tuple[Literal["hstu", "sasrec"], ...] = setting(
        ("hstu",), "model kinds; the first, on policy_split with the first seed, is the policy"
    )
    size: Literal["small", "hstu_large"] = setting(
        "small", "model shape: the small CPU model or the published HSTU-large"
    )
    splits: tuple[Literal["temporal", "leave_one_out"], ...] = setting(
        ("temporal",),
        "evaluation splits, each trained and tabulated; the policy's alone by default (only it "
        "goes downstream), add leave_one_out for the comparison table (configs/ml-100k.yaml)",
    )
    policy_split: Literal["temporal", "leave_one_out"] = setting(
        "temporal", "the policy's split (post-training evaluates on the future-dated one)"
    )
    seeds: tuple[int, ...] = setting((0,), "seeds per kind and split (the table's mean ± CI)")
    epochs: int | None = setting(
        3, "most epochs; the default run trains briefly so it ends in minutes (None: TrainConfig)"
    )
    patience: int | None = setting(
        2, "epochs without a better valid NDCG@10 before stopping (None: TrainConfig)"
    )
    max_len: int | None = setting(50, "most recent events the model sees (None: ModelConfig)")
    valid_max_targets: int | None = setting(
        20_000,
        "validation (early stopping, the best epoch) on a seeded sample of at most this many "
        "valid targets, so its cost stays flat as the log grows; the test split is always "
        "evaluated whole (None: every valid target)",
    )
    num_negatives: int | None = setting(
        512,
        "sampled negatives per batch, -1 = full softmax; 512 keep the default run in minutes "
        "on the simulator's catalogue, configs/ml-100k.yaml sets -1 (None: TrainConfig)",
    )
    temperature: float | None = setting(None, "softmax temperature (None: TrainConfig)")
    lr: float | None = setting(None, "AdamW learning rate (None: TrainConfig)")
    ema_decay: float | None = setting(
        None, "> 0: validate and keep a moving average of the weights with this decay (None: off)"
    )
    logits_matmul: Literal["float32", "bfloat16"] | None = setting(
        None, "dtype of the full softmax's logits matmul; bfloat16 needs native CPU bf16 "
        "(None: float32)",
    )  # fmt: skip
    seen_scope: Literal["window", "history"] | None = setting(
        None,
        "seen items left out of the training softmax: the window's inputs or the user's whole "
        "history, as evaluation excludes (None: window)",
    )
    dropout: float | None = setting(None, "dropout (None: ModelConfig)")
    query_time: Literal["own", "decision"] | None = setting(
        None,
        "HSTU's time-gap query: each event's own time or the decision's (the next event's, as in "
        "Meta's HSTU); configs/ml-100k.yaml sets decision (None: own)",
    )
    ddp_processes: int = setting(
        1,
        "> 1: every run trains under torchrun with N DDP processes (see device), the global batch "
        "split across them; 1: one process, in this one",
    )
    device: DeviceName = setting(
        "auto", "where training and evaluation run: auto = CUDA when a GPU is visible, else "
        "CPU; cuda fails without one; DDP: NCCL and one GPU per process on CUDA, else gloo",
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_choices(self)
        check_device(self.device, "PretrainSettings.device")
        if self.ddp_processes < 1:
            raise ValueError(f"ddp_processes must be >= 1, got {self.ddp_processes}")
        if self.policy_split not in self.splits:
            raise ValueError(f"policy_split {self.policy_split!r} is not among {self.splits}")

    def model_config(self, kind: str) -> ModelConfig:
        cfg = replace(ModelConfig.hstu_large() if self.size == "hstu_large" else ModelConfig(),
                      kind=kind)  # fmt: skip
        if self.dropout is not None:
            cfg = replace(cfg, dropout=self.dropout)
        if self.query_time is not None:
            cfg = replace(cfg, query_time=self.query_time)
        return replace(cfg, max_len=self.max_len) if self.max_len else cfg

    def train_config(self, seed: int) -> TrainConfig:
        overrides: dict[str, Any] = {"seed": seed, "valid_max_targets": self.valid_max_targets}
        if self.epochs is not None:
            overrides["epochs"] = self.epochs
        if self.patience is not None:
            overrides["patience"] = self.patience
        for name in _TUNED:
            if getattr(self, name) is not None:
                overrides[name] = getattr(self, name)
        return replace(TrainConfig(), **overrides)
