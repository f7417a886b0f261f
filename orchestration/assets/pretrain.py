"""The pretrained policy: behaviour cloning (next-item prediction) on the warehouse sequences."""

from pathlib import Path

import dagster as dg

from common.paths import data_dir, warehouse_path
from common.reports import write_report
from common.tracking import tracking_uri
from common.warehouse import connect_read_only, training_inputs
from orchestration.metadata import image
from training.pretrain.stage import PretrainSettings, markdown_table, run_pretraining
from watchlogs.sources import read_fingerprint


class PretrainConfig(dg.Config):
    """Model kind(s), size, splits, seeds and epochs. The first kind on `policy_split` (seed 0)
    becomes the policy; more kinds or seeds fill the comparison table."""

    kinds: list[str] = ["hstu"]
    size: str = "small"
    splits: list[str] = ["temporal", "leave_one_out"]
    policy_split: str = "temporal"
    seeds: list[int] = [0]
    # The default run trains briefly so `make run` ends in minutes; configs/ raise these.
    epochs: int = 3
    patience: int = 2
    max_len: int = 50
    # None = the TrainConfig default (training/core/config.py: -1, full softmax); configs/ may
    # override.
    # 512 sampled negatives keep the default run in minutes on the simulator's 3.5k titles (the
    # full softmax, -1, costs ~4x per epoch there); configs/ml-100k.yaml sets -1.
    num_negatives: int | None = 512
    temperature: float | None = None
    lr: float | None = None
    # > 0: validate and keep a moving average of the weights (TrainConfig.ema_decay); None = off.
    ema_decay: float | None = None
    # "bfloat16": the full softmax's logits matmul in bf16, 10-21% faster per ML-100K epoch on
    # CPUs with AVX512-BF16 (float32 where bf16 is not native); None = the default, float32.
    logits_matmul: str | None = None
    # Which seen items leave the training softmax: "window" (the training window's inputs) or
    # "history" (the user's whole history, as evaluation excludes); None = the default, window.
    seen_scope: str | None = None
    dropout: float | None = None  # None = the ModelConfig default
    # HSTU's time-gap bias measured from each decision's time ("decision": the next event's, at
    # the end the request's, as in Meta's HSTU) or from each event's own ("own"); None = the
    # ModelConfig default ("own"). configs/ml-100k.yaml sets "decision".
    query_time: str | None = None
    # Scale-out: > 1 trains every run under `torchrun --standalone --nproc_per_node N` (DDP,
    # gloo, CPU; the global batch split across the processes, same result as one process up to
    # float rounding and per-process dropout masks). 1 = one process, inside this step.
    ddp_processes: int = 1

    def settings(self) -> PretrainSettings:
        return PretrainSettings(
            kinds=tuple(self.kinds),
            size=self.size,
            splits=tuple(self.splits),
            policy_split=self.policy_split,
            seeds=tuple(self.seeds),
            epochs=self.epochs,
            patience=self.patience,
            max_len=self.max_len,
            num_negatives=self.num_negatives,
            temperature=self.temperature,
            lr=self.lr,
            ema_decay=self.ema_decay,
            logits_matmul=self.logits_matmul,
            seen_scope=self.seen_scope,
            dropout=self.dropout,
            query_time=self.query_time,
            ddp_processes=self.ddp_processes,
        )


@dg.asset(
    group_name="pretrain",
    kinds={"pytorch", "mlflow"},
    deps=[dg.AssetKey(["marts", "user_sequences"]), dg.AssetKey(["marts", "split_cutoffs"])],
    description=(
        "HSTU-style generative recommender trained by next-item prediction (behaviour cloning) "
        "with sampled softmax; checkpoint per epoch (a re-run resumes), early stopping on valid "
        "NDCG@10; full-catalogue evaluation with seen items excluded, beside a popularity "
        "baseline. Runs tracked in MLflow (experiment `pretrain`); report in reports/pretrain.json."
        " Config `ddp_processes` > 1 trains each run under torchrun (DDP, gloo, CPU)."
    ),
)
def pretrained_policy(
    context: dg.AssetExecutionContext, config: PretrainConfig
) -> dg.MaterializeResult:
    root = data_dir()
    with connect_read_only(warehouse_path()) as con:
        sequences, valid_start, test_start = training_inputs(con)
    raw = read_fingerprint(root) or {}
    # Reports group by dataset: "simulator", or the MovieLens file's name (e.g. "ml-100k").
    source = Path(raw["path"]).stem if raw.get("source") == "movielens" else raw.get("source", "?")
    result = run_pretraining(
        sequences,
        valid_start,
        test_start,
        config.settings(),
        root=root,
        dataset=source,
        log=context.log.info,
        tags={"dagster_run_id": context.run.run_id},
    )
    write_report("pretrain", result.report)
    policy = result.report["test"][source][config.policy_split][config.kinds[0]]
    return dg.MaterializeResult(
        metadata={
            "results": dg.MetadataValue.md(markdown_table(result.report)),
            "test_ndcg@10": policy["ndcg@10"]["mean"],
            "test_hr@10": policy["hr@10"]["mean"],
            "mlflow_run_id": result.policy_run_id,
            "ddp_processes": config.ddp_processes,
            "mlflow_tracking_uri": tracking_uri(root),
            "policy_dir": dg.MetadataValue.path(str(result.policy_dir)),
            "training_curve": image(result.curve_png, "training curve"),
        }
    )
