"""The pretraining asset and stage launch DDP training under torchrun (gloo, 2 CPU processes):
the same best weights as one process, metrics in MLflow and progress in Dagster's log, resume from
a killed run's checkpoint, and a failing rank's stderr in the error. Real torch.distributed,
Dagster and MLflow on tiny data; each torchrun launch costs a few seconds of process start-up,
so the stage's one-process/two-process comparison runs through the asset."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace

import dagster as dg
import duckdb
import mlflow
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch

from common.layout import DataLayout
from common.tracking import tracking_uri
from common.warehouse import connect_read_only, training_inputs
from tests.toy import toy_sequences
from training.core.data import build_dataset
from training.models import SequenceEncoder
from training.models.checkpoint import load_checkpoint
from training.pretrain.ddp import launch_pretrain
from training.pretrain.loop import pretrain
from training.pretrain.stage import PretrainSettings, run_pretraining

torch.set_num_threads(1)

# Dropout 0: the two processes then compute the one-process step up to float summation order.
# 45 users in one batch of 64: the ranks hold 23 and 22 rows and different numbers of positions.
ASSET_CONFIG = {
    "epochs": 3, "patience": 10, "splits": ["temporal"], "max_len": 12, "num_negatives": 16,
    "dropout": 0.0,
}  # fmt: skip
SEQUENCES = toy_sequences(n_users=45, n_items=25, length=12)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The data directory (warehouse, MLflow store, models) of this module's asset run."""
    previous = os.environ["ASFT_DATA_DIR"]
    path = tmp_path_factory.mktemp("ddp-data")
    os.environ["ASFT_DATA_DIR"] = str(path)
    yield path
    os.environ["ASFT_DATA_DIR"] = previous


def close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)


def write_warehouse(path, sequences: pa.Table) -> None:
    """The two tables the asset reads (`user_sequences` contract, `split_cutoffs`), written
    directly: dbt's build of them is tested in test_orchestration and would cost ~30 s here."""
    users, lengths = sequences["user_id"].to_pylist(), sequences["length"].to_pylist()
    event_ids = pa.array(
        [[f"{u}-{k}" for k in range(n)] for u, n in zip(users, lengths, strict=True)]
    )
    ts = pc.list_flatten(sequences["timestamps"]).to_numpy()
    valid_start, test_start = np.quantile(ts, [0.7, 0.85])
    with duckdb.connect(str(path)) as con:
        con.register("seqs", sequences.append_column("event_ids", event_ids))
        con.execute("create schema marts")
        con.execute(
            "create table marts.user_sequences as select user_id, event_ids, item_ids, "
            "timestamps, rewards, length as sequence_length from seqs"
        )
        con.execute(
            f"create table marts.split_cutoffs as select to_timestamp({valid_start}) "
            f"as valid_start_ts, to_timestamp({test_start}) as test_start_ts"
        )


def test_asset_with_two_ddp_processes_matches_one_process(root):
    from orchestration.definitions import defs
    from orchestration.defs.pretrain.assets import PretrainConfig

    write_warehouse(DataLayout(root).warehouse, SEQUENCES)
    run_config = {
        "ops": {
            "pretrained_policy": {"config": {**ASSET_CONFIG, "ddp_processes": 2}},
            # Three epochs on toy data need not beat popularity: the gate's floor is off here.
            "pretrained_policy_gx_model_metrics": {"config": {"min_ratio_to_popularity": 0.0}},
        }
    }
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("main_job").execute_in_process(
            run_config=run_config, instance=instance,
            asset_selection=[dg.AssetKey("pretrained_policy")],
        )  # fmt: skip
        assert result.success
        messages = [e.message for e in instance.all_logs(result.run_id) if e.message]
    policy = next(
        m.event_specific_data.materialization.metadata
        for m in result.get_asset_materialization_events()
        if m.asset_key == dg.AssetKey("pretrained_policy")
    )
    assert policy["ddp_processes"].value == 2
    assert any("torchrun: 2 DDP processes" in m for m in messages)
    # Rank 0's progress lines reached Dagster's log as they were printed, one per epoch.
    assert sum(m.startswith("epoch ") for m in messages) == ASSET_CONFIG["epochs"]
    mlflow.set_tracking_uri(tracking_uri(root))
    run = mlflow.get_run(policy["mlflow_run_id"].value)
    assert run.data.params["train.ddp_processes"] == "2"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [1, 2, 3]
    ddp_best = load_checkpoint(DataLayout(root).pretrained_policy)[0].state_dict()

    # The stage function with one process, same settings and data: the same best weights.
    # Else it would resume from the two-process run.
    shutil.rmtree(DataLayout(root).pretrain_checkpoints)
    with connect_read_only(DataLayout(root).warehouse) as con:
        sequences, valid_start, test_start = training_inputs(con)
    settings = replace(PretrainConfig(**ASSET_CONFIG).settings(), ddp_processes=1)
    lines: list[str] = []
    single = run_pretraining(
        sequences, valid_start, test_start, settings, root, "toy", log=lines.append
    )
    assert single.report["ddp_processes"] == 1 and not any("torchrun" in s for s in lines)
    assert mlflow.get_run(single.policy_run_id).data.params["train.ddp_processes"] == "1"
    one_model, vocab, _ = load_checkpoint(single.policy_dir)
    one_best = one_model.state_dict()
    close(ddp_best, one_best)
    torch.manual_seed(0)  # ...and training moved the weights, so the comparison means something
    start = SequenceEncoder(len(vocab.items), settings.model_config("hstu"))
    assert any(not torch.allclose(v, one_best[k]) for k, v in start.state_dict().items())


class Killed(Exception):
    pass


SETTINGS = PretrainSettings(max_len=12, num_negatives=16, dropout=0.0, patience=10)


def test_a_launch_resumes_a_killed_run_from_its_last_checkpoint(tmp_path):
    data = build_dataset(SEQUENCES, max_len=12)
    mcfg = SETTINGS.model_config("hstu")
    cfg = replace(SETTINGS.train_config(0), epochs=5, num_threads=1)

    def kill_after_epoch_1(epoch, row):
        if epoch == 1:
            raise Killed

    quiet = lambda _: None  # noqa: E731
    with pytest.raises(Killed):
        pretrain(data, mcfg, cfg, tmp_path, log=quiet, on_epoch_end=kill_after_epoch_1)
    lines, seen = [], []
    resumed = launch_pretrain(data, mcfg, cfg, tmp_path, 2, log=lines.append,
                              on_epoch_end=lambda e, row: seen.append(e))  # fmt: skip
    assert any(f"resumed from {tmp_path / 'last.pt'} after epoch 1" in s for s in lines)
    assert seen == [2, 3, 4, 5]  # only the missing epochs ran
    full = pretrain(data, mcfg, cfg, log=quiet)  # one process, never interrupted
    close(resumed.final_state, full.final_state)
    close(resumed.best_state, full.best_state)
    assert resumed.best_epoch == full.best_epoch
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4, 5]
    assert resumed.metrics["test"] == pytest.approx(full.metrics["test"], abs=1e-6)


def test_a_failing_rank_raises_with_its_stderr(tmp_path):
    data = build_dataset(SEQUENCES, max_len=12)
    cfg = replace(SETTINGS.train_config(0), epochs=1, num_threads=1)
    pretrain(data, SETTINGS.model_config("sasrec"), cfg, tmp_path, log=lambda _: None)
    # The same checkpoint directory with another model: every rank refuses to resume from it.
    with pytest.raises(RuntimeError, match="holds a run with another model config") as err:
        launch_pretrain(data, SETTINGS.model_config("hstu"), cfg, tmp_path, 2, log=lambda _: None)
    assert "exited with code" in str(err.value) and "stderr.log" in str(err.value)
