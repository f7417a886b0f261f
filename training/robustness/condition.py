"""One level of one corruption, trained and evaluated without the oracle: corrupt the logged
reward, re-derive the reward features, retrain the trainer's reward model and both judges on
it, recompute the advantages, fine-tune every method x beta x seed from the pretrained policy,
then score each policy on everything but the ground truth and keep its slates (true
satisfaction is added by study.py once every level is trained)."""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from training.core.data import SequenceData
from training.models import SequenceEncoder
from training.posttrain import evaluate as ev
from training.posttrain.advantages import compute_advantages
from training.posttrain.inputs import PosttrainInputs
from training.posttrain.settings import AdvantagesSettings
from training.posttrain.study import policy_model, train_policies
from training.reward.features import FeatureTables
from training.reward.model import RewardEnsemble
from training.reward.train import JUDGE_HALF, TRAINER_HALF, Targets, predict, train_ensemble
from training.robustness.corruption import corrupt_rewards
from training.robustness.rewardstats import with_rewards
from training.robustness.settings import RobustnessSettings
from training.robustness.world import EncodedEvents, StudyWorld

Log = Callable[[str], None]
PRETRAINED = "pretrained"


@dataclass
class PolicyRun:
    """One trained policy of one level: its figures (no ground truth yet) and its slates."""

    method: str
    beta: float | None
    seed: int
    metrics: dict[str, float]
    slates: np.ndarray  # [S, k] at the study's states


@dataclass
class ConditionResult:
    kind: str
    level: float
    runs: list[PolicyRun]  # the pretrained policy first (method "pretrained")
    reward_test_prediction: np.ndarray  # [N] trainer's mean r_hat of the world's test events
    reward_fit: dict[str, float]
    seconds: dict[str, float] = field(default_factory=dict)


def with_event_rewards(data: SequenceData, rewards: np.ndarray) -> SequenceData:
    """`data` with other logged rewards: the same arrays otherwise (sequences untouched)."""
    return dataclasses.replace(data, events=dataclasses.replace(data.events, rewards=rewards))


def relabel(t: Targets, rewards: np.ndarray) -> Targets:
    """The same encoded events with their rewards taken from [E] `rewards`."""
    return dataclasses.replace(t, rewards=rewards[t.event_index].astype(np.float32))


def fit(
    name: str, encoder: SequenceEncoder, world: StudyWorld, tables: FeatureTables,
    events: EncodedEvents, rewards: np.ndarray, s: RobustnessSettings, seed: int, log: Log,
) -> tuple[RewardEnsemble, dict]:  # fmt: skip
    r = s.reward()
    train, valid = relabel(events.train, rewards), relabel(events.valid, rewards)
    return train_ensemble(name, encoder, world.data.vocab, tables, train, valid,
                          r.head_config(s.members, seed), r.train_config(seed), log)  # fmt: skip


def reward_models(
    world: StudyWorld, rewards: np.ndarray, s: RobustnessSettings, log: Log
) -> tuple[RewardEnsemble, RewardEnsemble, RewardEnsemble, dict]:
    """The trainer's ensemble (half 0), the judge (half 1, same encoder and features, as the
    reward stage trains it) and the independent judge (half 1, its own encoder, title features
    from its half's events only), all on `rewards`."""
    data = with_event_rewards(world.data, rewards)
    tables = with_rewards(world.tables, data, rewards, None)
    own_tables = with_rewards(world.tables, data, rewards, world.event_half() == JUDGE_HALF)
    pe, half = world.policy_events, world.user_half
    split = {
        h: EncodedEvents(*(t.take(half[t.users] == h) for t in (pe.train, pe.valid, pe.test)))
        for h in (TRAINER_HALF, JUDGE_HALF)
    }
    # A copy: the ensemble freezes its encoder in place, and the policy is fine-tuned later.
    policy = copy.deepcopy(world.inputs.policy)
    trainer, trainer_fit = fit("trainer", policy, world, tables, split[TRAINER_HALF], rewards, s,
                               s.seed, log)  # fmt: skip
    judge, _ = fit("judge", policy, world, tables, split[JUDGE_HALF], rewards, s, s.seed + 1, log)
    independent, _ = fit("independent judge", world.judge_encoder, world, own_tables,
                         world.judge_events, rewards, s, s.seed + 2, log)  # fmt: skip
    summary = {"trainer_valid_rmse": float(np.mean(trainer_fit["best_valid_rmse"]))}
    return trainer, judge, independent, summary


def run_condition(
    world: StudyWorld, kind: str, level: float, s: RobustnessSettings, log: Log = print
) -> ConditionResult:
    """Train and evaluate (without the oracle) every policy at one level (module docstring)."""
    t_start = time.perf_counter()
    logged = world.data.events.rewards
    rewards = (
        logged.astype(np.float32)
        if kind == "clean"
        else corrupt_rewards(logged, kind, level, s.corruption_seed, world.habit)
    )
    data = with_event_rewards(world.data, rewards)
    inputs = PosttrainInputs(world.inputs.policy, world.inputs.meta, data)
    trainer, judge, independent, reward_fit = reward_models(world, rewards, s, log)
    seconds = {"reward_models": time.perf_counter() - t_start}

    t0 = time.perf_counter()
    adv = compute_advantages(inputs.policy, trainer, data, AdvantagesSettings(),
                             temperature=inputs.temperature, log=lambda _: None)  # fmt: skip
    post = s.posttrain()
    trained = train_policies(inputs, post, adv, trainer, log=log)
    seconds["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    k, temperature = post.k, inputs.temperature
    states = ev.user_states(data, "test", post.eval_users, seed=0)  # the same at every level
    ranking = ev.subsample(ev.above_median_targets(data), post.max_ranking_targets)
    scores = {n: ev.judge_state_scores(j, data, states) for n, j in
              (("judge_reward", judge), ("independent_judge_reward", independent))}  # fmt: skip
    reference = ev.policy_view(inputs.policy, data, states, k, temperature)

    def score(model: SequenceEncoder) -> tuple[dict[str, float], np.ndarray]:
        view = ev.policy_view(model, data, states, k, temperature)
        out = ev.ranking_metrics(model, data, ranking)
        for name, table in scores.items():
            out[name] = ev.judge_reward(view.slates, table)["judge_reward"]
        out |= ev.deviation_between(view, reference)
        return out, view.slates

    runs = [PolicyRun(PRETRAINED, None, 0, *score(inputs.policy))]
    for p in trained:
        metrics, slates = score(policy_model(inputs, p.state))
        metrics["train_seconds"] = p.train_seconds
        runs.append(PolicyRun(p.method, p.beta, p.seed, metrics, slates))
    seconds["evaluate"] = time.perf_counter() - t0
    prediction = predict(trainer, world.policy_events.test).mean(0)
    log(f"{kind} {level:g}: {len(trained)} policies in {time.perf_counter() - t_start:.0f}s")
    return ConditionResult(kind, level, runs, prediction, reward_fit, seconds)
