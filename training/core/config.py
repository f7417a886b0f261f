"""Model and training hyper-parameters: two frozen dataclasses, stored in every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal


@dataclass(frozen=True)
class ModelConfig:
    """Defaults: the small CPU model, tuned on ML-100K leave-one-out (training/pretrain/compare.py),
    except `query_time`: the tuned "decision" is set by configs/ml-100k.yaml, and the default
    "own" keeps the simulator pipeline's published figures."""

    kind: Literal["hstu", "sasrec"] = "hstu"
    d_model: int = 48
    n_blocks: int = 2
    n_heads: int = 2
    max_len: int = 50  # most recent items the model sees; older ones are dropped
    dropout: float = 0.3
    num_time_buckets: int = 128  # HSTU only: log-time-gap buckets of the relative bias
    # HSTU only: the time each position's query is taken at in the time-gap bias. "own" = its own
    # event's time; "decision" = the time of the decision it makes (the next event's time; at
    # the last position the request's time, known whenever a recommendation is asked for), as in
    # Meta's HSTU, which writes the target's timestamp after the history. Callers without a
    # decision time pass none and get "own".
    query_time: Literal["own", "decision"] = "own"
    ffn_mult: int = 1  # SASRec only: FFN width = ffn_mult * d_model (1 as in Kang & McAuley)

    def __post_init__(self) -> None:
        if self.query_time not in ("own", "decision"):
            raise ValueError(f"query_time must be 'own' or 'decision', got {self.query_time!r}")

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

    epochs: int = 80
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = 1.0
    # > 0: validation, early stopping and best.pt use an exponential moving average of the
    # weights (updated after every optimizer step with this decay) instead of the raw weights:
    # a smoother model and a less noisy validation curve. 0 = off.
    ema_decay: float = 0.0
    # Uniform random negatives per batch, shared by its positions; -1 (losses.ALL_ITEMS) = every
    # item of the catalogue: full softmax, no sampling, seen items still masked. On ML-100K it
    # reaches a higher valid NDCG@10 than 512 negatives (0.1464 vs 0.1410, 3 seeds) in about half
    # the epochs, at about twice the cost per epoch; on the simulator's 3.5k titles it costs ~4x
    # per epoch, so the pretraining asset's default run pins 512 (orchestration/assets/pretrain.py).
    num_negatives: int = -1
    in_batch_negatives: int = 0  # other positions' targets used as negatives (0 = none)
    temperature: float = 0.1
    # "bfloat16": the full softmax's logits matmul in bfloat16 (losses.sampled_softmax_loss):
    # 10% less time per ML-100K epoch on 2 threads, 21% on one (benchmarks/logits_matmul.py), on
    # a CPU with AVX512-BF16; float32 is used where the CPU lacks native bf16. Opt-in.
    logits_matmul: Literal["float32", "bfloat16"] = "float32"
    mask_seen_negatives: bool = True  # drop negatives the user already saw (eval excludes them)
    # Where "seen" looks: "window" = the inputs of the training window only; "history" = the
    # user's whole history before each position, as evaluation excludes it. On ML-100K (max_len
    # 50) "history" masks 101 titles per position instead of 23: valid NDCG@10 +0.0041 over six
    # seeds, in fewer epochs. Opt-in (configs/ml-100k.yaml), so simulator figures stay as published.
    seen_scope: Literal["window", "history"] = "window"
    patience: int = 10  # epochs without a better validation NDCG@10 before stopping
    eval_every: int = 1
    # Batches of similar-length windows (sorted within runs of this many batches; 0 = plain
    # shuffle): far less padding when max_len is well above the typical history.
    length_buckets: int = 0
    eval_batch_size: int = 256
    seed: int = 0
    # None = every core this process may use. On a box shared with other jobs, 1 thread can be
    # several times faster for these small models (OpenMP threads wait on each other).
    num_threads: int | None = None

    def __post_init__(self) -> None:
        if self.logits_matmul not in ("float32", "bfloat16"):
            raise ValueError(
                f"logits_matmul must be 'float32' or 'bfloat16', got {self.logits_matmul!r}"
            )
        if self.seen_scope not in ("window", "history"):
            raise ValueError(f"seen_scope must be 'window' or 'history', got {self.seen_scope!r}")

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
