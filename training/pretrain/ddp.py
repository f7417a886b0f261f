"""Data-parallel pretraining under `torchrun` (DDP: gloo on CPU; NCCL and one GPU per local
rank on CUDA, training/core/device.py): the scale-out path.

Every rank holds the whole `SequenceData` and draws the same global batches (same seed); rank r
trains on rows r, r+W, r+2W... of each global batch. The step equals one process on the global
batch because (1) every rank draws the same negatives from the global batch's targets, and (2)
each rank's mean loss is rescaled by P_local / P_global * W, so DDP's gradient average is the
gradient of the global mean loss (ranks hold different numbers of supervised positions); see
`training.pretrain.loop.train_epoch`. Dropout masks are drawn per rank, so runs with dropout
agree in
distribution, not bit for bit.

`launch_pretrain` is `pretrain` with N processes: it starts
`python -m torch.distributed.run --standalone --nproc_per_node N -m training.pretrain.ddp --job J`,
streams rank 0's progress lines into `log`, turns its per-epoch rows into `on_epoch_end` calls,
and evaluates the best checkpoint here once the ranks are done. Checkpoints, resume after a kill
and early stopping are `pretrain`'s (rank 0 evaluates and broadcasts the decision).

Fixed-epoch training of a Parquet file, without evaluation:

    torchrun --nproc_per_node 2 -m training.pretrain.ddp --sequences seqs.parquet --out state.pt
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import signal
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import torch
import torch.distributed as dist

from common.paths import PROJECT_ROOT
from training.core.config import ModelConfig, TrainConfig
from training.core.data import SequenceData, build_dataset
from training.core.device import CPU, MixedPrecision, ddp_backend, rank_device, resolve_device
from training.models import SequenceEncoder
from training.pretrain.loop import (
    SINGLE_PROCESS,
    EpochHook,
    Log,
    PretrainResult,
    Shard,
    available_cores,
    fit,
    result_from_checkpoint,
    train_epoch,
)

__all__ = ["launch_pretrain", "train"]

# Rank 0 prints one line per epoch with this prefix and the row as JSON; the launcher turns it
# into an `on_epoch_end` call (MLflow metrics) instead of a log line.
EPOCH_LINE = "@@pretrain-epoch "


def train(
    data: SequenceData,
    mcfg: ModelConfig,
    cfg: TrainConfig,
    shard: Shard = SINGLE_PROCESS,
    device: torch.device = CPU,
) -> dict[str, torch.Tensor]:
    """`cfg.epochs` epochs from the seed's initial weights on `device` (this rank's); returns
    the final state dict, on the CPU."""
    torch.set_num_threads(cfg.num_threads or 1)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model: torch.nn.Module = SequenceEncoder(data.n_items, mcfg).to(device)
    if shard.world > 1:
        ids = [device.index] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
    )
    amp = MixedPrecision(device)
    for epoch in range(1, cfg.epochs + 1):
        train_epoch(model, opt, data, cfg, epoch, shard=shard, precision=amp)
    encoder = model.module if hasattr(model, "module") else model
    return {k: v.detach().clone().cpu() for k, v in encoder.state_dict().items()}


def _tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open(errors="replace") as f:
            return "".join(deque(f, maxlen=lines))
    except OSError:
        return ""


def _stop(proc: subprocess.Popen) -> None:
    """Terminate torchrun (SIGTERM, then SIGKILL) and reap it. torchrun stops its ranks on
    SIGTERM; after a SIGKILL they get SIGTERM from the kernel (`_die_with_parent`)."""
    if proc.poll() is None:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue


def launch_pretrain(
    data: SequenceData,
    model_config: ModelConfig,
    train_config: TrainConfig,
    checkpoint_dir: str | Path,
    processes: int,
    log: Log = print,
    on_epoch_end: EpochHook | None = None,
    *,
    device: str | torch.device = "cpu",
) -> PretrainResult:
    """`pretrain` under torchrun with `processes` DDP ranks (gloo on CPU; on CUDA NCCL and
    one GPU per rank); same result shape.

    The job (data and configs) is pickled into `checkpoint_dir/ddp/`; rank stderr goes to files
    there, and a failed run raises with each rank's stderr tail. If this process is interrupted
    (or `on_epoch_end` raises), the ranks are terminated; `last.pt` then resumes the next launch.
    """
    if processes < 2:
        raise ValueError(f"launch_pretrain needs processes >= 2, got {processes}")
    dev = resolve_device(device)  # here, before any rank starts: a missing GPU fails now
    if dev.type == "cuda":
        rank_device(dev, processes - 1)  # one GPU per rank
    ckdir = Path(checkpoint_dir)
    job_dir = ckdir / "ddp"
    job_dir.mkdir(parents=True, exist_ok=True)
    job = job_dir / "job.pkl"
    with job.open("wb") as f:
        pickle.dump(
            {
                "data": data,
                "model_config": model_config.to_dict(),
                "train_config": train_config.to_dict(),
                "checkpoint_dir": str(ckdir),
            },
            f,
        )
    threads = train_config.num_threads or max(1, available_cores() // processes)
    logs = job_dir / "logs"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc_per_node", str(processes), "--log-dir", str(logs), "--redirects", "2",
        "-m", "training.pretrain.ddp", "--job", str(job), "--device", dev.type,
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",  # rank 0's lines arrive as they are printed
        "OMP_NUM_THREADS": str(threads),
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    how = "gloo, CPU" if dev.type == "cpu" else f"{ddp_backend(dev)}, one GPU each"
    log(f"training under torchrun: {processes} DDP processes ({how}), {threads} thread(s) each")
    launcher_err = job_dir / "torchrun.stderr"
    with launcher_err.open("w") as err:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=PROJECT_ROOT,
            start_new_session=True,  # its own process group: stopped as a whole
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                if line.startswith(EPOCH_LINE):
                    row = json.loads(line[len(EPOCH_LINE) :])
                    if on_epoch_end is not None:
                        on_epoch_end(int(row["epoch"]), row)
                elif line:
                    log(line)
            code = proc.wait()
        finally:
            _stop(proc)
    if code != 0:
        ranks = sorted(logs.glob("**/stderr.log"), key=lambda p: p.stat().st_mtime)[-processes:]
        tails = "\n".join(f"--- {p.relative_to(logs)} ---\n{_tail(p)}" for p in ranks)
        raise RuntimeError(
            f"torchrun ({processes} processes) exited with code {code}.\n{tails}\n"
            f"--- torchrun ---\n{_tail(launcher_err, 15)}"
        )
    job.unlink()  # the data's copy; the checkpoints are what a re-run resumes from
    return result_from_checkpoint(data, ckdir, model_config, train_config, log, device=dev)


def _die_with_parent() -> None:
    """Linux: this rank gets SIGTERM when torchrun dies, even by SIGKILL, so no orphan keeps
    training (and writing checkpoints) after its launcher is gone."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _run_job(path: Path, device: torch.device = CPU) -> None:
    """One rank of `launch_pretrain`'s job (inside torchrun), on this rank's `device`."""
    _die_with_parent()
    shard = Shard(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")))
    with path.open("rb") as f:
        job: dict[str, Any] = pickle.load(f)  # written by launch_pretrain, our own file

    def emit(epoch: int, row: dict[str, Any]) -> None:
        clean = {k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}
        print(EPOCH_LINE + json.dumps(clean), flush=True)

    fit(
        job["data"],
        ModelConfig.from_dict(job["model_config"]),
        TrainConfig.from_dict(job["train_config"]),
        checkpoint_dir=job["checkpoint_dir"],
        log=lambda line: print(line, flush=True),
        on_epoch_end=emit,
        shard=shard,
        device=device,
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--job", help="a launch_pretrain job file: pretrain with checkpoints")
    p.add_argument("--sequences", help="user_sequences as Parquet (fixed epochs, no evaluation)")
    p.add_argument("--out", help="where rank 0 writes the final state dict (with --sequences)")
    p.add_argument("--model-config", default="{}", help="ModelConfig fields as JSON")
    p.add_argument("--train-config", default="{}", help="TrainConfig fields as JSON")
    p.add_argument("--max-len", type=int, default=50)
    p.add_argument(
        "--device", choices=("cpu", "cuda"), default="cpu", help="cuda: NCCL, a GPU per rank"
    )
    args = p.parse_args(argv)
    if (args.job is None) == (args.sequences is None) or (args.sequences and not args.out):
        p.error("give either --job, or --sequences with --out")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = rank_device(resolve_device(args.device), int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL's collectives run on the current device
    if world > 1:
        dist.init_process_group(ddp_backend(device))
    try:
        if args.job:
            _run_job(Path(args.job), device)
            return
        mcfg = ModelConfig.from_dict(json.loads(args.model_config))
        cfg = TrainConfig.from_dict(json.loads(args.train_config))
        data = build_dataset(pq.read_table(args.sequences), max_len=args.max_len)
        state = train(data, mcfg, cfg, Shard(rank, world), device)
        if rank == 0:
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            torch.save(state, out)
    finally:
        if world > 1:
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
