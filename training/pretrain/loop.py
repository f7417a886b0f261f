"""Behaviour-cloning pretraining: next-item sampled softmax, AdamW, early stopping on valid
NDCG@10, a checkpoint after every epoch and exact resume.

Resume is exact because every source of randomness in epoch e is re-seeded from (seed, e):
the shuffle, dropout and the negatives. A run killed after epoch k and re-run on the same
checkpoint directory therefore ends with the same weights as one that was never interrupted.

The files of `checkpoint_dir` and what makes one resumable: training/pretrain/checkpoint.py.

Data-parallel: `fit(..., shard=Shard(rank, world))` inside an initialised process group
(`training.pretrain.ddp.launch_pretrain` starts one under torchrun) trains each global batch split
across the ranks (see `train_epoch`); rank 0 evaluates, decides, checkpoints and logs, and
broadcasts the validation score so every rank takes the same early-stopping decision. world = 1
is the plain single-process path, operation for operation.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from training.core.config import ModelConfig, TrainConfig
from training.core.data import PAD, SequenceData, Vocab
from training.core.device import MixedPrecision, device_of, resolve_device, state_on_cpu, to_device
from training.core.evaluate import evaluate, evaluate_popularity
from training.core.losses import (
    logits_dtype,
    negative_mask,
    sample_negatives,
    sampled_softmax_loss,
)
from training.models import SequenceEncoder
from training.pretrain.checkpoint import (
    LAST,
    VOCAB,
    RunState,
    check_same_run,
    clone_state,
    read_best_state,
    read_last,
    resume,
    save_checkpoint,
)

DDP = torch.nn.parallel.DistributedDataParallel

Log = Callable[[str], None]
EpochHook = Callable[[int, dict[str, Any]], None]


@dataclass
class PretrainResult:
    model: SequenceEncoder  # with the best weights loaded, in eval mode
    best_state: dict[str, torch.Tensor]
    final_state: dict[str, torch.Tensor]  # weights after the last epoch trained
    best_epoch: int
    history: list[dict[str, Any]]  # one row per epoch: loss, seconds, valid metrics
    metrics: dict[str, dict[str, float]]  # valid/test for the model and for popularity
    train_seconds: float  # training + validation time, summed over resumes
    vocab: Vocab
    model_config: ModelConfig
    train_config: TrainConfig


@dataclass(frozen=True)
class Shard:
    """This process's place in a data-parallel run: rank r of world W trains rows r, r+W, ..."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE_PROCESS = Shard()


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def batch_rows(data: SequenceData, cfg: TrainConfig, rng: np.random.Generator) -> list[np.ndarray]:
    """The epoch's batches of window indices: a random order, cut every `batch_size`.

    With `cfg.length_buckets` = k > 0, each run of k batches' worth of the random order is sorted
    by window length before it is cut and the batches are then shuffled, so a batch is padded to
    about its own windows' length rather than to the longest window of the epoch.
    """
    order, bs = rng.permutation(len(data.windows)), cfg.batch_size
    if cfg.length_buckets > 0:
        lengths = data.windows.ends - data.windows.starts
        chunks = [
            order[i : i + bs * cfg.length_buckets]
            for i in range(0, len(order), bs * cfg.length_buckets)
        ]
        rows = [c[np.argsort(-lengths[c], kind="stable")] for c in chunks]
        batches = [r[i : i + bs] for r in rows for i in range(0, len(r), bs)]
        return [batches[i] for i in rng.permutation(len(batches))]
    return [order[i : i + bs] for i in range(0, len(order), bs)]


def train_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: SequenceData,
    cfg: TrainConfig,
    epoch: int,
    event_weights: torch.Tensor | None = None,
    shard: Shard = SINGLE_PROCESS,
    precision: MixedPrecision | None = None,
) -> float:
    """One pass over the train sequences in a (seed, epoch)-determined order; mean batch loss.

    `event_weights` ([n_events], indexed by flat event index) weights each target's term, e.g.
    A-SFT's exp(A / beta); None = plain behaviour cloning.

    With `shard.world` = W > 1 (`model` wrapped in DistributedDataParallel) every rank draws the
    same global batches and negatives (from the global batch's targets) and trains rows r, r+W,
    ... of each; its loss is rescaled by P_local / P_global * W so DDP's gradient average is the
    gradient of the global batch's mean loss (ranks hold different numbers of positions). The
    returned value is then this rank's share: averaged over ranks it is the global mean loss.
    Dropout masks are drawn per rank, so with dropout ranks agree in distribution only.
    Batches go to the model's device; `precision`: autocast and loss scaling (off on CPU).
    """
    model.train()
    seed = _epoch_seed(cfg.seed, epoch)
    torch.manual_seed(seed + shard.rank)  # dropout: per rank
    gen = torch.Generator().manual_seed(seed)  # negatives: the same on every rank
    encoder = model.module if isinstance(model, DDP) else model
    amp = precision or MixedPrecision(device_of(encoder))
    matmul_dtype = logits_dtype(cfg)  # probes the CPU: once per epoch, not per batch
    losses = []
    for rows in batch_rows(data, cfg, np.random.default_rng(seed)):
        b = to_device(data.train_batch(rows), amp.device)
        mask = b["target_ids"] != PAD
        global_targets, p_global = b["target_ids"][mask], int(mask.sum())
        negs = sample_negatives(
            global_targets, data.n_items, cfg.num_negatives, cfg.in_batch_negatives, generator=gen
        )
        if shard.world > 1:
            local = rows[shard.rank :: shard.world]
            if len(local) == 0:  # a short last batch: this rank still joins the gradient average
                loss = sum(p.sum() * 0.0 for p in model.parameters())
                b = None
            else:
                b = to_device(data.train_batch(local), amp.device)
                mask = b["target_ids"] != PAD
        if b is not None:
            with amp.autocast():
                h = model(b["item_ids"], b["timestamps"], b["decision_ts"])
                targets = b["target_ids"][mask]
                w = None
                if event_weights is not None:
                    at = torch.from_numpy(b["target_index"]).to(amp.device)
                    w = event_weights[at[mask]]
                drop = negative_mask(b, negs, cfg)
                drop = None if drop is None else drop[mask]
                loss = sampled_softmax_loss(
                    h[mask], targets, encoder.item_embeddings(), negs, cfg.temperature, w, drop,
                    matmul_dtype=matmul_dtype,
                )  # fmt: skip
            if shard.world > 1:
                loss = loss * (int(mask.sum()) / p_global) * shard.world
        optimizer.zero_grad(set_to_none=True)
        amp.backward(loss)
        if cfg.grad_clip > 0:
            amp.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        amp.step(optimizer)
        losses.append(loss.item())
    return float(np.mean(losses)) if losses else float("nan")


def pretrain(
    data: SequenceData,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    checkpoint_dir: str | Path | None = None,
    log: Log = print,
    on_epoch_end: EpochHook | None = None,
    event_weights: np.ndarray | None = None,
    *,
    device: str | torch.device = "cpu",
) -> PretrainResult:
    """Train a `SequenceEncoder` on `data.train`, early-stopped on valid NDCG@10.

    With `checkpoint_dir`, a re-run resumes after the last finished epoch. `on_epoch_end(epoch,
    row)` is called after the epoch's checkpoint is written (row = loss, seconds, valid metrics).
    Trained and evaluated on `device` (training/core/device.py); the result is on the CPU.
    """
    mcfg, cfg = model_config or ModelConfig(), train_config or TrainConfig()
    model, best_state, st = fit(
        data, mcfg, cfg, checkpoint_dir, log, on_epoch_end, event_weights, device=device
    )
    return _finish(model, best_state, st, data, mcfg, cfg, log)


def fit(
    data: SequenceData,
    mcfg: ModelConfig,
    cfg: TrainConfig,
    checkpoint_dir: str | Path | None = None,
    log: Log = print,
    on_epoch_end: EpochHook | None = None,
    event_weights: np.ndarray | None = None,
    shard: Shard = SINGLE_PROCESS,
    *,
    device: str | torch.device = "cpu",
) -> tuple[SequenceEncoder, dict[str, torch.Tensor], RunState]:
    """`pretrain`'s training loop: (model after the last epoch, best weights, run state), on
    `device` (a DDP rank: its own GPU, `training.core.device.rank_device`).

    With `shard.world` > 1 every rank calls this inside an initialised process group; only rank
    0 evaluates, writes checkpoints, logs and calls `on_epoch_end`.
    """
    dev = resolve_device(device)
    if data.max_len > mcfg.max_len:
        raise ValueError(f"data.max_len {data.max_len} > model max_len {mcfg.max_len}")
    if shard.world > 1 and not dist.is_initialized():
        raise RuntimeError(f"{shard} needs an initialised torch.distributed process group")
    if not shard.main:
        log = on_epoch_end = None  # type: ignore[assignment]
    say: Log = log or (lambda _: None)
    torch.set_num_threads(cfg.num_threads or max(1, available_cores() // shard.world))
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = SequenceEncoder(data.n_items, mcfg).to(dev)  # initialised on the CPU: same seeds
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
    )
    weights = None if event_weights is None else torch.as_tensor(event_weights, dtype=torch.float32)
    weights = None if weights is None else weights.to(dev)
    # `scored`: the weights validation scores and best.pt keeps: the model itself, or with
    # ema_decay > 0 a copy holding the moving average of its weights.
    scored = model
    if cfg.ema_decay > 0:
        scored = copy.deepcopy(model)
        opt.register_step_post_hook(lambda *_: _ema_update(scored, model, cfg.ema_decay))
    st = RunState()
    best_state = clone_state(model.state_dict())
    ckdir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckdir is not None:
        ckdir.mkdir(parents=True, exist_ok=True)
        if shard.main:
            data.vocab.save_json(ckdir / VOCAB)
        if (ckdir / LAST).exists():
            st, best_state = resume(ckdir, model, scored, opt, mcfg, cfg, data.n_items, best_state)
            say(f"resumed from {ckdir / LAST} after epoch {st.epoch}")
    say(
        f"pretrain {mcfg.kind}: {sum(p.numel() for p in model.parameters()):,} parameters, "
        f"{data.summary()}, threads={torch.get_num_threads()}"
        + (f", {shard.world} DDP processes ({dist.get_backend()})" if shard.world > 1 else "")
        + (f", on {dev}" if dev.type != "cpu" else "")
    )
    if cfg.logits_matmul == "bfloat16" and logits_dtype(cfg) != torch.bfloat16:
        say("logits_matmul bfloat16: this CPU has no native bf16 matmul; float32 is used")
    # Wrapped after loading: DDP broadcasts rank 0's weights, and every rank loaded the same.
    net: torch.nn.Module = model
    if shard.world > 1:
        net = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    amp = MixedPrecision(dev)  # one loss scale for the whole run

    while st.epoch < cfg.epochs and not st.stopped:
        st.epoch += 1
        t0 = time.perf_counter()
        loss = train_epoch(net, opt, data, cfg, st.epoch, weights, shard, amp)
        if shard.world > 1:
            loss = _sum_over_ranks(loss, dev) / shard.world  # the global batches' mean loss
        row: dict[str, Any] = {"epoch": st.epoch, "loss": loss}
        improved = False
        if st.epoch % cfg.eval_every == 0 or st.epoch == cfg.epochs:
            score = float("nan")
            if shard.main:
                valid = evaluate(
                    scored, data, "valid", batch_size=cfg.eval_batch_size,
                    max_targets=cfg.valid_max_targets,
                )  # fmt: skip
                row.update({f"valid_{k}": v for k, v in valid.items()})
                score = valid["ndcg@10"] if len(data.valid) else float(st.epoch)  # no valid: latest
            if shard.world > 1:
                score = _from_main(score, dev)  # every rank takes rank 0's decision
            improved = score > st.best_metric
            if improved:
                st.best_metric, st.best_epoch, st.bad_epochs = score, st.epoch, 0
                best_state = clone_state(scored.state_dict())
            else:
                st.bad_epochs += 1
                st.stopped = st.bad_epochs >= cfg.patience
        row["seconds"] = time.perf_counter() - t0
        st.train_seconds += row["seconds"]
        st.history.append(row)
        if ckdir is not None and shard.main:
            save_checkpoint(ckdir, model, scored, opt, st, mcfg, cfg, data, improved, row)
        say(
            f"epoch {st.epoch}: loss {loss:.4f}"
            + (f" valid ndcg@10 {row['valid_ndcg@10']:.4f}" if "valid_ndcg@10" in row else "")
            + f" ({row['seconds']:.1f}s){' *' if improved else ''}"
        )
        if on_epoch_end is not None:
            on_epoch_end(st.epoch, row)
    return model, best_state, st


@torch.no_grad()
def _ema_update(average: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for a, p in zip(average.parameters(), model.parameters(), strict=True):
        a.lerp_(p, 1.0 - decay)


def _sum_over_ranks(x: float, device: torch.device | None = None) -> float:
    t = torch.tensor([x], dtype=torch.float64, device=device)  # NCCL reduces GPU tensors only
    dist.all_reduce(t)
    return float(t.item())


def _from_main(x: float, device: torch.device | None = None) -> float:
    t = torch.tensor([x], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return float(t.item())


def _finish(
    model: SequenceEncoder,
    best_state: dict[str, torch.Tensor],
    st: RunState,
    data: SequenceData,
    mcfg: ModelConfig,
    cfg: TrainConfig,
    log: Log,
) -> PretrainResult:
    """Load the best weights and evaluate them (and popularity) on valid and test, on the
    model's device; the result's model and weights are on the CPU."""
    final_state = clone_state(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    bs, sample = cfg.eval_batch_size, cfg.valid_max_targets  # valid: the epochs' sample
    metrics = {
        "valid": st.recorded_valid()
        or evaluate(model, data, "valid", batch_size=bs, max_targets=sample),
        "test": evaluate(model, data, "test", batch_size=bs),
        "popularity_valid": evaluate_popularity(data, "valid", batch_size=bs, max_targets=sample),
        "popularity_test": evaluate_popularity(data, "test", batch_size=bs),
    }
    log(f"best epoch {st.best_epoch}: test {metrics['test']}")
    if device_of(model).type != "cpu":
        model, best_state = model.cpu(), state_on_cpu(best_state)  # results on the CPU
        final_state = state_on_cpu(final_state)
    return PretrainResult(
        model, best_state, final_state, st.best_epoch, st.history, metrics,
        st.train_seconds, data.vocab, mcfg, cfg,
    )  # fmt: skip


def result_from_checkpoint(
    data: SequenceData,
    checkpoint_dir: str | Path,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    log: Log = print,
    *,
    device: str | torch.device = "cpu",
) -> PretrainResult:
    """The `PretrainResult` of a finished run from its `last.pt` and `best.pt` (e.g. one trained
    by other processes), with the final evaluation done here (on `device`). The configs default
    to the checkpoint's; given ones must match the run (as on resume)."""
    ckdir = Path(checkpoint_dir)
    if not (ckdir / LAST).exists():
        raise FileNotFoundError(f"no last.pt in {ckdir}: the run wrote no checkpoint")
    ck = read_last(ckdir)
    mcfg = model_config or ModelConfig.from_dict(ck["model_config"])
    cfg = train_config or TrainConfig.from_dict(ck["train_config"])
    check_same_run(ck, mcfg, cfg, data.n_items)
    st = RunState(**ck["state"])
    torch.set_num_threads(cfg.num_threads or available_cores())
    torch.manual_seed(cfg.seed)
    model = SequenceEncoder(data.n_items, mcfg)
    # As `fit`: the initial weights if no epoch improved.
    best_state = read_best_state(ckdir, clone_state(model.state_dict()))
    model.load_state_dict(ck["model"])
    return _finish(model.to(resolve_device(device)), best_state, st, data, mcfg, cfg, log)
