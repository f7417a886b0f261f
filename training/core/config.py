"""Model and training hyper-parameters: two frozen dataclasses, stored in every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from common.settings import check_choices, setting


@dataclass(frozen=True)
class ModelConfig:
    """Defaults: the small CPU model, tuned on ML-100K leave-one-out (training/pretrain/compare.py),
    except `query_time`: the tuned "decision" is set by configs/ml-100k.yaml, and the default
    "own" keeps the simulator pipeline's published figures."""

    kind: Literal["hstu", "sasrec"] = setting("hstu", "encoder blocks: HSTU-style or SASRec")
    d_model: int = setting(48, "width of the item embeddings and the states")
    n_blocks: int = setting(2, "stacked attention blocks")
    n_heads: int = setting(2, "attention heads per block")
    max_len: int = setting(50, "most recent items the model sees; older ones are dropped")
    dropout: float = setting(0.3, "dropout rate")
    num_time_buckets: int = setting(
        128, "HSTU only: log-time-gap buckets of the relative attention bias"
    )
    # Callers without a decision time pass none and get "own".
    query_time: Literal["own", "decision"] = setting(
        "own",
        "HSTU only: the time each query is taken at in the time-gap bias: its own event's, or the "
        "decision's (the next event's; at the last position the request's), as in Meta's HSTU",
    )
    ffn_mult: int = setting(
        1, "SASRec only: FFN width = ffn_mult * d_model (1 as in Kang & McAuley)"
    )

    def __post_init__(self) -> None:
        check_choices(self)

    @classmethod
    def hstu_large(cls) -> ModelConfig:
        """The published HSTU-large shape (ML-1M/20M in Zhai et al. 2024)."""
        return cls(kind="hstu", d_model=50, n_blocks=8, n_heads=2, max_len=200, dropout=0.2)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


@dataclass(frozen=True)
class TrainConfig:
    """Defaults: tuned with the small ModelConfig on ML-100K; `hstu_repo()`: the published one."""

    epochs: int = setting(80, "most epochs (early stopping usually ends sooner)")
    batch_size: int = setting(64, "training windows per batch")
    lr: float = setting(2e-3, "AdamW learning rate")
    weight_decay: float = setting(0.0, "AdamW weight decay")
    betas: tuple[float, float] = setting((0.9, 0.98), "AdamW betas")
    grad_clip: float = setting(1.0, "gradient-norm clip (0 = none)")
    # A smoother model and a less noisy validation curve than the raw weights.
    ema_decay: float = setting(
        0.0,
        "> 0: validation, early stopping and best.pt use a moving average of the weights, "
        "updated after every optimizer step with this decay; 0 = off",
    )
    # The full softmax learns in fewer epochs at a higher cost per epoch; on the simulator's
    # larger catalogue the pretraining stage's default run pins sampled negatives instead.
    num_negatives: int = setting(
        -1,
        "uniform random negatives per batch, shared by its positions; -1 (losses.ALL_ITEMS) = "
        "the whole catalogue: full softmax, seen items still masked",
    )
    in_batch_negatives: int = setting(0, "other positions' targets used as negatives (0 = none)")
    temperature: float = setting(0.1, "softmax temperature")
    logits_matmul: Literal["float32", "bfloat16"] = setting(
        "float32",
        "dtype of the full softmax's logits matmul (losses.sampled_softmax_loss); bfloat16 only "
        "where the CPU has native bf16, else float32 is used. Opt-in",
    )
    mask_seen_negatives: bool = setting(
        True, "drop negatives the user already saw (evaluation excludes them)"
    )
    # Opt-in (configs/ml-100k.yaml), so the simulator's figures stay as published.
    seen_scope: Literal["window", "history"] = setting(
        "window",
        "where seen negatives are looked up: the training window's inputs, or the user's whole "
        "history before each position (as evaluation excludes it)",
    )
    patience: int = setting(10, "epochs without a better validation NDCG@10 before stopping")
    eval_every: int = setting(1, "validate every N epochs")
    valid_max_targets: int | None = setting(
        None,
        "validate on a seeded sample of at most this many valid targets (the same sample every "
        "epoch), so validation's cost stays flat as the log grows; None: every valid target",
    )
    # Far less padding when max_len is well above the typical history.
    length_buckets: int = setting(
        0,
        "batches of similar-length windows: sorted within runs of this many batches "
        "(0 = plain shuffle)",
    )
    eval_batch_size: int = setting(256, "windows per evaluation batch")
    seed: int = setting(0, "seed of the initial weights, the shuffle, dropout and negatives")
    # On a box shared with other jobs, one thread can be several times faster for these small
    # models (OpenMP threads wait on each other).
    num_threads: int | None = setting(None, "torch threads (None: every core this process may use)")

    def __post_init__(self) -> None:
        check_choices(self)

    @classmethod
    def hstu_repo(cls) -> TrainConfig:
        """Meta's generative-recommenders ML-1M recipe: 128 negatives, temperature 0.05."""
        return cls(epochs=100, batch_size=128, lr=1e-3, num_negatives=128, temperature=0.05,
                   mask_seen_negatives=False)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        if "betas" in kw:
            kw["betas"] = tuple(kw["betas"])
        return cls(**kw)
