"""Data-parallel pretraining under `torchrun` (DDP, gloo on CPU): the scale-out path.

Every rank holds the whole `SequenceData` and draws the same global batches (same seed); rank r
trains on rows r, r+W, r+2W... of each global batch. The step equals one process on the global
batch because (1) every rank draws the same negatives from the global batch's targets, and (2)
each rank's mean loss is rescaled by P_local / P_global * W, so DDP's gradient average is the
gradient of the global mean loss (ranks hold different numbers of supervised positions).
Dropout masks are drawn per rank, so runs with dropout agree in distribution, not bit for bit.

    torchrun --nproc_per_node 2 -m training.distributed --sequences seqs.parquet --out state.pt
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.distributed as dist

from training.config import ModelConfig, TrainConfig
from training.data import PAD, SequenceData, build_dataset
from training.losses import sample_negatives, sampled_softmax_loss, seen_negatives
from training.models import SequenceEncoder
from training.pretrain import _epoch_seed, batch_rows


@dataclass(frozen=True)
class Shard:
    rank: int = 0
    world: int = 1


def _targets(data: SequenceData, rows: np.ndarray) -> tuple[torch.Tensor, int]:
    """The global batch's target item ids (for in-batch negatives) and its supervised count."""
    b = data.train_batch(rows)
    t = b["target_ids"]
    return t[t != PAD], int((t != PAD).sum())


def train_epoch_sharded(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: SequenceData,
    cfg: TrainConfig,
    epoch: int,
    shard: Shard = Shard(),
) -> float:
    """One epoch; with `shard.world` = 1 this is plain single-process training."""
    model.train()
    seed = _epoch_seed(cfg.seed, epoch)
    torch.manual_seed(seed + shard.rank)  # dropout: per rank
    gen = torch.Generator().manual_seed(seed)  # negatives: the same on every rank
    encoder = model.module if hasattr(model, "module") else model
    losses = []
    for rows in batch_rows(data, cfg, np.random.default_rng(seed)):
        global_targets, p_global = _targets(data, rows)
        negs = sample_negatives(
            global_targets, data.n_items, cfg.num_negatives, cfg.in_batch_negatives, generator=gen
        )
        local = rows[shard.rank :: shard.world]
        if len(local) == 0:  # a short last batch: this rank still joins the gradient average
            loss = sum(p.sum() * 0.0 for p in model.parameters())
        else:
            b = data.train_batch(local)
            h = model(b["item_ids"], b["timestamps"])
            mask = b["target_ids"] != PAD
            drop = seen_negatives(b["item_ids"], negs)[mask] if cfg.mask_seen_negatives else None
            local_mean = sampled_softmax_loss(
                h[mask], b["target_ids"][mask], encoder.item_embeddings(), negs,
                cfg.temperature, None, drop,
            )  # fmt: skip
            loss = local_mean * (int(mask.sum()) / p_global) * shard.world
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        losses.append(loss.item())  # this rank's share of the global mean loss
    return float(np.mean(losses)) if losses else float("nan")


def train(
    data: SequenceData, mcfg: ModelConfig, cfg: TrainConfig, shard: Shard = Shard()
) -> dict[str, torch.Tensor]:
    """`cfg.epochs` epochs from the seed's initial weights; returns the final state dict."""
    torch.set_num_threads(cfg.num_threads or 1)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model: torch.nn.Module = SequenceEncoder(data.n_items, mcfg)
    if shard.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
    )
    for epoch in range(1, cfg.epochs + 1):
        train_epoch_sharded(model, opt, data, cfg, epoch, shard)
    encoder = model.module if hasattr(model, "module") else model
    return {k: v.detach().clone() for k, v in encoder.state_dict().items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sequences", required=True, help="user_sequences as Parquet")
    p.add_argument("--out", required=True, help="where rank 0 writes the final state dict")
    p.add_argument("--model-config", default="{}", help="ModelConfig fields as JSON")
    p.add_argument("--train-config", default="{}", help="TrainConfig fields as JSON")
    p.add_argument("--max-len", type=int, default=50)
    args = p.parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        dist.init_process_group("gloo")
    mcfg = ModelConfig.from_dict(json.loads(args.model_config))
    cfg = TrainConfig.from_dict(json.loads(args.train_config))
    data = build_dataset(pq.read_table(args.sequences), max_len=args.max_len)
    state = train(data, mcfg, cfg, Shard(rank, world))
    if rank == 0:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, out)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
