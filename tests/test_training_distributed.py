"""DDP under torchrun (gloo, 2 CPU processes) equals one process on the same global batches."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import torch

from tests.toy import toy_sequences
from training.core.config import ModelConfig, TrainConfig
from training.core.data import build_dataset
from training.models import SequenceEncoder
from training.pretrain.ddp import train
from training.pretrain.loop import pretrain

MODEL = ModelConfig(d_model=16, n_blocks=2, n_heads=2, max_len=12, dropout=0.0)
# An odd batch size, so the two ranks hold different numbers of rows and positions.
TRAIN = TrainConfig(epochs=2, batch_size=7, num_negatives=16, in_batch_negatives=4, lr=3e-3,
                    num_threads=1, patience=100)  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sequences(tmp_path_factory):
    path = tmp_path_factory.mktemp("ddp") / "sequences.parquet"
    pq.write_table(toy_sequences(n_users=30, n_items=25, length=12), path)
    return path


def test_single_process_path_is_the_pretrainer(sequences):
    data = build_dataset(pq.read_table(sequences), max_len=12)
    ours = train(data, MODEL, TRAIN)
    theirs = pretrain(data, MODEL, TRAIN, log=lambda _: None).final_state
    for k in ours:
        torch.testing.assert_close(ours[k], theirs[k], rtol=0, atol=0)


def test_torchrun_two_processes_match_one_process(sequences, tmp_path):
    out = tmp_path / "ddp_state.pt"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "training.pretrain.ddp", "--sequences", str(sequences), "--out", str(out),
        "--max-len", "12",
        "--model-config", json.dumps(MODEL.to_dict()),
        "--train-config", json.dumps(TRAIN.to_dict()),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ddp = torch.load(out, weights_only=True)
    data = build_dataset(pq.read_table(sequences), max_len=12)
    single = train(data, MODEL, TRAIN)
    assert ddp.keys() == single.keys()
    for k in single:
        torch.testing.assert_close(ddp[k], single[k], rtol=1e-4, atol=1e-5)
    # ...and training moved the weights, so the comparison is not of two untouched models.
    torch.manual_seed(TRAIN.seed)
    start = SequenceEncoder(data.n_items, MODEL).state_dict()
    assert any(not torch.allclose(start[k], single[k]) for k in single)
