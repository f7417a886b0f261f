"""The robustness study's settings: the corruptions and their levels, what is post-trained at
each level (the post-training study's knobs), how each method's beta is picked without the
oracle, and the budgets of the retrained reward models and the independent judge's encoder.
The Dagster run config is derived from this dataclass (orchestration/config.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from common.settings import check_choices, setting
from training.posttrain.config import MethodName
from training.posttrain.methods import REGISTRY
from training.posttrain.settings import PosttrainSettings
from training.reward.settings import RewardSettings
from training.robustness.corruption import KINDS, CorruptionKind

SelectBy = Literal["judge_reward", "independent_judge_reward", "ndcg@10"]
ALL_METHODS: tuple[str, ...] = tuple(REGISTRY)


@dataclass(frozen=True)
class RobustnessSettings:
    """Every kind of corruption at each of its levels; at every level the reward model and both
    judges are retrained, the advantages recomputed and every method x beta x seed fine-tuned
    from the one pretrained policy."""

    kinds: tuple[CorruptionKind, ...] = setting(("noise", "habit"), "the corruptions studied")
    levels: Mapping[str, tuple[float, ...]] = setting(
        doc="kind -> levels (0 = the logged reward; run once and shared by every kind): noise "
        "sigma on the 1-5 scale, replaced share, habit inflation in reward points",
        factory=lambda: {
            "noise": (0.0, 0.5, 1.0, 1.5, 2.0, 3.0),
            "replace": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
            "habit": (0.0, 0.5, 1.0, 1.5, 2.0, 4.0),
        },
    )
    trending_share: float = setting(
        0.05, "habit: events of titles in this top share of 7-day popularity count as habit"
    )
    corruption_seed: int = setting(0, "seed of the corruption draws (common to every level)")
    methods: tuple[MethodName, ...] = setting(ALL_METHODS, "the methods trained at every level")  # type: ignore[assignment]
    betas: tuple[float, ...] = setting((0.1,), "beta of every beta method without its own sweep")
    method_betas: Mapping[str, tuple[float, ...]] = setting(
        doc="a method's own sweep (A-SFT's beta, Exp-RSFT's lambda)",
        factory=lambda: {"asft": (0.1, 1.0, 10.0), "exprsft": (0.1, 1.0, 10.0)},
    )
    seeds: tuple[int, ...] = setting((0, 1, 2), "seeds of every configuration")
    steps: int = setting(60, "batches per fine-tuning run")
    batch_size: int = setting(64, "training windows per batch")
    lr: float = setting(1e-3, "AdamW learning rate of the fine-tuning")
    eval_users: int | None = setting(500, "slate states (one per test user); None: every user")
    max_ranking_targets: int | None = setting(2000, "above-median ranking targets; None: all")
    select_by: SelectBy = setting(
        "judge_reward",
        "the rule picking each method's beta, never the oracle: the highest mean of this figure "
        "among its betas within max_kl (the smallest KL if none is)",
    )
    max_kl: float = setting(1.0, "selection: mean KL to the pretrained policy at most")
    members: int = setting(3, "members of the trainer's and of each judge's reward ensemble")
    reward_epochs: int = setting(6, "most epochs of every reward ensemble")
    max_train_events: int | None = setting(100_000, "reward-model training events (None: all)")
    max_valid_events: int | None = setting(20_000, "reward-model validation events")
    max_test_events: int | None = setting(20_000, "test events of the reward model's correlation")
    judge_encoder_epochs: int = setting(10, "independent judge: most epochs of its own encoder")
    feast_check_rows: int = setting(200, "feature cells re-read through Feast and compared")
    num_threads: int = setting(1, "torch threads (small models: OpenMP waits dominate)")
    seed: int = setting(0, "seed of the reward models and event samples")

    def __post_init__(self) -> None:
        check_choices(self)
        missing = [k for k in self.kinds if not self.levels.get(k)]
        if missing:
            raise ValueError(f"no levels for {missing}; levels has {sorted(self.levels)}")
        unknown = sorted(set(self.levels) - set(KINDS))
        if unknown:
            raise ValueError(f"levels names {unknown}: the kinds are {KINDS}")
        if any(v < 0 for k in self.kinds for v in self.levels[k]):
            raise ValueError("corruption levels must be >= 0")
        if not self.max_kl >= 0:
            raise ValueError(f"max_kl must be >= 0, got {self.max_kl}")
        self.posttrain()  # its own checks: methods, seeds, betas

    def conditions(self) -> list[tuple[str, float]]:
        """(kind, level) to run: ("clean", 0.0) once when any kind has level 0, then every
        kind's positive levels."""
        zero = any(v == 0 for k in self.kinds for v in self.levels[k])
        out = [("clean", 0.0)] if zero else []
        return out + [(k, float(v)) for k in self.kinds for v in sorted(self.levels[k]) if v > 0]

    def posttrain(self) -> PosttrainSettings:
        """The post-training study's settings for one level."""
        return PosttrainSettings(
            methods=self.methods,
            betas=self.betas,
            method_betas={m: b for m, b in self.method_betas.items() if m in self.methods},
            seeds=self.seeds,
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            eval_users=self.eval_users,
            max_ranking_targets=self.max_ranking_targets,
            num_threads=self.num_threads,
        )

    def reward(self) -> RewardSettings:
        """The reward stage's settings for the trainer's ensemble and the judges."""
        return RewardSettings(
            members=self.members,
            judge_members=self.members,
            epochs=self.reward_epochs,
            max_train_events=self.max_train_events,
            max_valid_events=self.max_valid_events,
            max_test_events=self.max_test_events,
            feast_check_rows=self.feast_check_rows,
            num_threads=self.num_threads,
            seed=self.seed,
        )
