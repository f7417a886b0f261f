"""The post-training stage's settings: one default and one line of doc per field (the Dagster run
config is derived from these dataclasses, orchestration/config.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from common.settings import check_choices, setting
from training.core.device import DeviceName, check_device
from training.posttrain.config import MethodName, PosttrainConfig
from training.posttrain.methods import BETA_METHODS, REGISTRY


@dataclass(frozen=True)
class AdvantagesSettings:
    """How r_hat and V(s) are taken from the trainer's reward ensemble."""

    lcb: float = setting(0.0, "r_hat = the ensemble's mean minus lcb standard deviations")
    top_k: int | None = setting(
        None, "V(s) over the policy's top_k titles (large catalogues); None = every title"
    )
    batch_size: int = setting(256, "states per reward-model call: fewer per-day catalogue passes")
    max_windows: int | None = setting(
        20_000,
        "training windows scored, sampled once (seed 0) where there are more; post-training "
        "draws every method's batches from these, so the study's cost and this stage's stay "
        "flat as the log grows (the default study draws 19,200: 3 seeds x 100 steps x 64; the "
        "default world has 18,904, all kept); None: every window",
    )
    max_scores_per_call: int = setting(
        48_000_000,
        "most [windows x positions x titles] scores per call (~190 MB each in float32): on a "
        "large catalogue fewer windows go per call (the default world's 3.5k titles keep 256)",
    )
    device: DeviceName = setting(
        "auto", "where the policy and the reward ensemble score: auto = CUDA when a GPU is "
        "visible, else CPU; cuda fails without one",
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_choices(self)
        check_device(self.device, "AdvantagesSettings.device")
        for name in ("batch_size", "max_scores_per_call", "max_windows", "top_k"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"AdvantagesSettings.{name} must be >= 1, got {value}")


@dataclass(frozen=True)
class PosttrainSettings:
    """What the study trains and how it is evaluated. `betas` sweep every method that takes a
    beta (its meaning per method: methods.REGISTRY); `method_betas` gives a method its own sweep
    instead (a DPO beta and an A-SFT temperature live on different scales)."""

    methods: tuple[MethodName, ...] = setting(("bc", "asft"), "the methods the study trains")
    betas: tuple[float, ...] = setting(
        (0.1, 1.0, 10.0), "beta sweep of every beta method: too sharp, middle, close to BC"
    )
    method_betas: Mapping[str, tuple[float, ...]] = setting(
        doc="a method's own beta sweep instead of `betas` (method -> betas)", factory=dict
    )
    seeds: tuple[int, ...] = setting((0, 1, 2), "seeds of every configuration (the CI's runs)")
    steps: int = setting(100, "batches per run (PPO: ppo_epochs optimizer updates per batch)")
    batch_size: int = setting(64, "training windows per batch")
    lr: float = setting(1e-3, "AdamW learning rate")
    weight_clip: float = setting(20.0, "A-SFT / RW-BC / Exp-RSFT: max per-target weight")
    self_normalise: bool = setting(
        True, "divide the weighted loss by the batch's sum of weights, not its target count"
    )
    k: int = setting(10, "slate size of the slate metrics (judge, true satisfaction, overlap)")
    eval_users: int | None = setting(
        1000, "slate states (one per test user), sampled once, seeded; None: every user"
    )
    max_ranking_targets: int | None = setting(
        5_000, "ranking targets, sampled once, seeded; None: every one"
    )
    ndcg_margin: float = setting(
        0.03,
        "champion check: its NDCG@10 at least (1 - margin) x the better of BC's and the "
        "pretrained policy's (relative)",
    )
    max_kl: float = setting(1.0, "champion check: its mean KL to the pretrained policy at most")
    registered_model_name: str = setting(
        "asft-recommender", "MLflow registered model the champion is registered under"
    )
    num_threads: int | None = setting(None, "torch threads; None: leave torch's setting alone")
    device: DeviceName = setting(
        "auto", "where fine-tuning (mixed precision on CUDA) and evaluation run: auto = CUDA "
        "when a GPU is visible, else CPU; cuda fails without one",
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_choices(self)
        check_device(self.device, "PosttrainSettings.device")
        if not self.methods or not self.seeds:
            raise ValueError("the study needs at least one method and one seed")
        if not (0 <= self.ndcg_margin < 1 and self.max_kl >= 0):
            raise ValueError(
                f"ndcg_margin must be in [0, 1) and max_kl >= 0, got {self.ndcg_margin} and "
                f"{self.max_kl}"
            )
        unknown = sorted(set(self.method_betas) - set(BETA_METHODS))
        if unknown:
            raise ValueError(f"method_betas names {unknown}: only {BETA_METHODS} take a beta")
        for m in (m for m in self.methods if REGISTRY[m].uses_beta):
            betas = self.betas_of(m)
            if not betas:
                raise ValueError(f"method {m!r} needs at least one beta")
            if any(b <= 0 for b in betas):  # type: ignore[operator]
                raise ValueError(f"betas of {m!r} must be > 0, got {betas}")

    def betas_of(self, method: str) -> tuple[float | None, ...]:
        """The method's beta sweep; (None,) for a method that takes no beta."""
        if not REGISTRY[method].uses_beta:
            return (None,)
        return tuple(self.method_betas.get(method, self.betas))

    def configurations(self) -> list[tuple[str, float | None]]:
        """(method, beta) pairs: every beta for the beta methods, one entry for the others."""
        return [(m, b) for m in self.methods for b in self.betas_of(m)]

    def run_config(
        self, method: str, beta: float | None, seed: int, temperature: float
    ) -> PosttrainConfig:
        """One run's config: the study's values, the method's beta (if it takes one) and the
        pretrained policy's scoring temperature."""
        beta_kw = {} if beta is None else {"beta": beta}
        return PosttrainConfig(
            method=method,  # type: ignore[arg-type]
            temperature=temperature,
            weight_clip=self.weight_clip,
            self_normalise=self.self_normalise,
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=seed,
            **beta_kw,
        )


def label_of(method: str, beta: float | None) -> str:
    """A configuration's name in tables and runs: "bc", "asft@beta=0.1"."""
    return method if beta is None else f"{method}@beta={beta:g}"
