"""Pretraining: resume after a kill gives the same weights; checkpoints load back."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
import torch

from tests.toy import toy_sequences
from training.core.config import ModelConfig, TrainConfig
from training.core.data import build_dataset, seeded_subset
from training.core.evaluate import evaluate, model_ranks
from training.core.losses import negative_mask
from training.models import SequenceEncoder
from training.models.checkpoint import load_checkpoint
from training.pretrain.checkpoint import run_key
from training.pretrain.loop import pretrain
from training.pretrain.stage import PretrainSettings, run_pretraining

MCFG = ModelConfig(kind="hstu", d_model=16, n_blocks=1, n_heads=2, max_len=8, dropout=0.2)
TCFG = TrainConfig(epochs=4, batch_size=8, lr=5e-3, num_negatives=16, in_batch_negatives=4,
                   patience=10, num_threads=1)  # fmt: skip


class Killed(Exception):
    pass


def data():
    return build_dataset(toy_sequences(n_users=20, n_items=15, length=12), max_len=8)


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(("query_time", "ema_decay"), [("own", 0.0), ("decision", 0.9)])
def test_resume_after_kill_matches_uninterrupted_run(tmp_path, query_time, ema_decay):
    quiet = lambda s: None  # noqa: E731
    mcfg, tcfg = replace(MCFG, query_time=query_time), replace(TCFG, ema_decay=ema_decay)
    full = pretrain(data(), mcfg, tcfg, tmp_path / "full", log=quiet)

    def kill_after_epoch_2(epoch, row):
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        pretrain(
            data(), mcfg, tcfg, tmp_path / "resumed", log=quiet, on_epoch_end=kill_after_epoch_2
        )
    seen = []
    resumed = pretrain(data(), mcfg, tcfg, tmp_path / "resumed", log=quiet,
                       on_epoch_end=lambda e, row: seen.append(e))  # fmt: skip
    assert seen == [3, 4]  # only the missing epochs ran
    assert same(full.final_state, resumed.final_state)
    assert same(full.best_state, resumed.best_state)
    assert full.best_epoch == resumed.best_epoch
    assert [r["loss"] for r in full.history] == [r["loss"] for r in resumed.history]


def test_moving_average_of_the_weights_is_what_is_validated_and_kept(tmp_path):
    quiet = lambda s: None  # noqa: E731
    cfg = replace(TCFG, epochs=3)
    plain = pretrain(data(), MCFG, cfg, log=quiet)
    # A decay of ~0 averages nothing: the same run, epoch for epoch.
    instant = pretrain(data(), MCFG, replace(cfg, ema_decay=1e-12), log=quiet)
    assert [r["valid_ndcg@10"] for r in plain.history] == pytest.approx(
        [r["valid_ndcg@10"] for r in instant.history], abs=1e-6
    )
    # A real average: training is untouched (same losses and final raw weights), while the
    # kept best weights are the average's, which differ from the raw weights.
    ema = pretrain(data(), MCFG, replace(cfg, ema_decay=0.9), tmp_path, log=quiet)
    assert [r["loss"] for r in ema.history] == [r["loss"] for r in plain.history]
    assert same(ema.final_state, plain.final_state)
    last = torch.load(tmp_path / "last.pt", weights_only=False)
    assert same(last["model"], ema.final_state) and not same(last["ema"], ema.final_state)
    best = torch.load(tmp_path / "best.pt", weights_only=True)["model"]
    assert same(best, ema.best_state)
    if ema.best_epoch == cfg.epochs:
        assert same(best, last["ema"])


def test_the_reported_valid_metrics_are_the_best_weights_evaluated(tmp_path):
    """The final report takes valid from the epoch that chose the weights: a fresh evaluation of
    the kept weights gives the same figures, and so does a run finished from its checkpoint."""
    d, quiet = data(), lambda s: None
    cfg = replace(TCFG, epochs=3, patience=3)
    result = pretrain(d, MCFG, cfg, tmp_path, log=quiet)
    assert result.best_epoch >= 1
    assert result.metrics["valid"] == evaluate(result.model, d, "valid")
    resumed = pretrain(d, MCFG, cfg, tmp_path, log=quiet)  # finished: only the final report
    assert resumed.metrics == result.metrics


def test_load_checkpoint_round_trip(tmp_path):
    d = data()
    result = pretrain(d, MCFG, TCFG.__class__(**{**TCFG.to_dict(), "epochs": 2}), tmp_path,
                      log=lambda s: None)  # fmt: skip
    model, vocab, meta = load_checkpoint(tmp_path)
    assert vocab.items.ids == d.vocab.items.ids and meta["epoch"] == result.best_epoch
    assert evaluate(model, d, "test") == result.metrics["test"]
    assert (tmp_path / "vocab.json").exists() and (tmp_path / "last.pt").exists()
    with pytest.raises(ValueError):  # the same directory with another model is refused
        pretrain(d, ModelConfig(kind="sasrec", max_len=8), TCFG, tmp_path, log=lambda s: None)


def test_event_weights_reach_the_loss():
    d = data()
    cfg = TrainConfig(**{**TCFG.to_dict(), "epochs": 1, "grad_clip": 0.0})
    quiet = lambda s: None  # noqa: E731
    plain = pretrain(d, MCFG, cfg, log=quiet)
    ones = pretrain(d, MCFG, cfg, log=quiet, event_weights=np.ones(len(d.events.items)))
    for k, v in plain.final_state.items():
        assert torch.allclose(v, ones.final_state[k], atol=1e-6), k
    # Zero weight on every event: no gradient, so the weights stay at their initial values.
    zero = pretrain(d, MCFG, cfg, log=quiet, event_weights=np.zeros(len(d.events.items)))
    torch.manual_seed(cfg.seed)
    init = SequenceEncoder(d.n_items, MCFG).state_dict()
    assert same(zero.final_state, init)


def test_length_buckets_cover_every_window_once_with_less_padding():
    from training.pretrain.loop import batch_rows

    d = build_dataset(toy_sequences(n_users=60, n_items=15, length=12), max_len=4)
    lengths = d.windows.ends - d.windows.starts
    cfg = TrainConfig(batch_size=8, length_buckets=4)
    plain = batch_rows(d, TrainConfig(batch_size=8), np.random.default_rng(0))
    bucketed = batch_rows(d, cfg, np.random.default_rng(0))
    assert sorted(np.concatenate(bucketed).tolist()) == list(range(len(d.windows)))
    padded = lambda batches: sum(len(b) * lengths[b].max() for b in batches)  # noqa: E731
    assert padded(bucketed) < padded(plain)
    assert [b.tolist() for b in bucketed] == [
        b.tolist() for b in batch_rows(d, cfg, np.random.default_rng(0))
    ]  # same seed, same batches (resume stays exact)


def test_a_capped_validation_ranks_a_seeded_sample_exactly_as_the_whole_split_does(tmp_path):
    """valid_max_targets: the ranks of a seeded sample of the valid targets, each equal to its
    rank in the whole-split evaluation, the same sample every epoch; the test split stays whole."""
    d, quiet = data(), lambda s: None
    n = len(d.valid)
    torch.manual_seed(0)
    model = SequenceEncoder(d.n_items, MCFG)
    whole = model_ranks(model, d, "valid")
    sample = model_ranks(model, d, "valid", max_targets=n // 3)
    picked = seeded_subset(n, n // 3)
    assert len(sample) == n // 3 and len(set(picked)) == n // 3
    assert torch.equal(sample, whole[picked])
    assert torch.equal(model_ranks(model, d, "valid", max_targets=n), whole)  # cap >= split
    cfg = replace(TCFG, epochs=2, patience=3, valid_max_targets=n // 3)
    result = pretrain(d, MCFG, cfg, tmp_path, log=quiet)
    assert result.metrics["valid"] == evaluate(result.model, d, "valid", max_targets=n // 3)
    assert result.metrics["valid"] != evaluate(result.model, d, "valid")
    assert result.metrics["test"] == evaluate(result.model, d, "test")
    assert PretrainSettings().train_config(seed=0).valid_max_targets == 20_000


def test_stage_settings_carry_the_tuned_options_and_refuse_a_bad_query_time():
    s = PretrainSettings(query_time="decision", ema_decay=0.99)
    assert s.model_config("hstu").query_time == "decision"
    assert s.train_config(seed=1).ema_decay == 0.99
    assert PretrainSettings().model_config("hstu").query_time == ModelConfig().query_time
    with pytest.raises(ValueError, match="query_time"):
        PretrainSettings(query_time="next").model_config("hstu")
    with pytest.raises(ValueError, match="logits_matmul"):
        PretrainSettings(logits_matmul="float16").train_config(seed=0)
    assert PretrainSettings(seen_scope="history").train_config(seed=0).seen_scope == "history"
    with pytest.raises(ValueError, match="seen_scope"):
        PretrainSettings(seen_scope="user").train_config(seed=0)


def test_history_scope_masks_every_item_the_user_saw_before_each_target():
    d = build_dataset(toy_sequences(n_users=6, n_items=15, length=12), max_len=3)
    rows = np.arange(len(d.windows))
    b = d.train_batch(rows)
    negs = torch.arange(1, d.n_items + 1)
    ev = d.events
    for scope in ("window", "history"):
        drop = negative_mask(b, negs, replace(TCFG, seen_scope=scope))
        for r, i in zip(*np.nonzero(b["target_index"] >= 0), strict=True):
            t = int(b["target_index"][r, i])
            start = ev.offsets[np.searchsorted(ev.offsets, t, side="right") - 1]
            window = set(b["item_ids"][r, : i + 1].tolist()) - {0}
            expect = set(ev.items[start:t].tolist()) if scope == "history" else window
            assert set((negs[drop[r, i]]).tolist()) == expect, (scope, r, i)


def test_bf16_logits_fall_back_to_float32_where_the_cpu_lacks_bf16(monkeypatch):
    import training.core.losses as pretrain_module

    cfg = replace(TCFG, logits_matmul="bfloat16")
    assert pretrain_module.logits_dtype(TCFG) == torch.float32
    monkeypatch.setattr(pretrain_module, "bf16_matmul_is_native", lambda: False)
    assert pretrain_module.logits_dtype(cfg) == torch.float32
    monkeypatch.setattr(pretrain_module, "bf16_matmul_is_native", lambda: True)
    assert pretrain_module.logits_dtype(cfg) == torch.bfloat16


def test_stage_resumes_its_own_run_and_starts_afresh_when_settings_change(tmp_path):
    """The asset re-run: same settings resume their checkpoint (more epochs allowed); another lr
    trains in a directory of its own instead of failing on the old checkpoint."""
    seqs, now = toy_sequences(n_users=20, n_items=15, length=12), datetime(2025, 1, 1, tzinfo=UTC)
    base = PretrainSettings(splits=("leave_one_out",), policy_split="leave_one_out", epochs=2,
                            patience=10, max_len=8, num_negatives=16)  # fmt: skip
    runs = lambda: sorted(p.name for p in (tmp_path / "checkpoints" / "pretrain").iterdir())  # noqa: E731
    for settings in (base, replace(base, epochs=3), replace(base, lr=1e-2)):
        lines: list[str] = []
        run_pretraining(seqs, now, now, settings, tmp_path, "toy", log=lines.append)
        resumed = [s for s in lines if s.startswith("resumed from")]
        if settings.lr is None and settings.epochs == 3:
            assert len(resumed) == 1 and "after epoch 2" in resumed[0] and len(runs()) == 1
        else:
            assert not resumed
    assert len(runs()) == 2
    assert run_key(MCFG, TCFG) == run_key(MCFG, replace(TCFG, epochs=9, num_threads=2))
    assert run_key(MCFG, TCFG) != run_key(MCFG, replace(TCFG, seen_scope="history"))


def test_settings_document_every_field_and_name_the_allowed_choices():
    from common.settings import doc_of

    for cls in (PretrainSettings, ModelConfig, TrainConfig):
        assert all(doc_of(f) for f in dataclasses.fields(cls)), cls.__name__
    with pytest.raises(ValueError, match="kinds = 'gru': expected one of 'hstu', 'sasrec'"):
        PretrainSettings(kinds=("hstu", "gru"))
    with pytest.raises(ValueError, match="size = 'huge'"):
        PretrainSettings(size="huge")
    with pytest.raises(ValueError, match="policy_split 'leave_one_out' is not among"):
        PretrainSettings(splits=("temporal",), policy_split="leave_one_out")
    with pytest.raises(ValueError, match="ModelConfig.kind"):
        ModelConfig(kind="gru")
