"""The reward model: a K-member ensemble of shallow two-tower heads on the frozen pretrained
policy and the Feast reward features, plus a judge ensemble trained on the other half of the
users; evaluated on the future-dated test events against user-mean and title-mean baselines."""

from pathlib import Path

import dagster as dg

from common.paths import data_dir
from common.reports import write_report
from common.tracking import tracking_uri
from orchestration.metadata import image
from training.reward.stage import RewardSettings, run_reward_stage
from watchlogs.sources import read_fingerprint

_DEFAULTS = RewardSettings()


class RewardConfig(dg.Config):
    """Ensemble sizes, head shape, training budget. The frozen encoder reads at most
    `max_train_events` training events (both halves together), so the stage stays in minutes."""

    members: int = _DEFAULTS.members
    judge_members: int = _DEFAULTS.judge_members
    embed_dim: int = _DEFAULTS.embed_dim
    hidden: int = _DEFAULTS.hidden
    epochs: int = _DEFAULTS.epochs
    patience: int = _DEFAULTS.patience
    batch_size: int = _DEFAULTS.batch_size
    lr: float = _DEFAULTS.lr
    weight_decay: float = _DEFAULTS.weight_decay
    bootstrap: bool = _DEFAULTS.bootstrap
    max_train_events: int = _DEFAULTS.max_train_events or 0  # 0 = every training event
    max_valid_events: int = _DEFAULTS.max_valid_events or 0
    max_test_events: int = _DEFAULTS.max_test_events or 0
    feast_check_rows: int = _DEFAULTS.feast_check_rows
    num_threads: int = _DEFAULTS.num_threads
    seed: int = _DEFAULTS.seed

    def settings(self) -> RewardSettings:
        return RewardSettings(
            members=self.members,
            judge_members=self.judge_members,
            embed_dim=self.embed_dim,
            hidden=self.hidden,
            epochs=self.epochs,
            patience=self.patience,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            bootstrap=self.bootstrap,
            max_train_events=self.max_train_events or None,
            max_valid_events=self.max_valid_events or None,
            max_test_events=self.max_test_events or None,
            feast_check_rows=self.feast_check_rows,
            num_threads=self.num_threads,
            seed=self.seed,
        )


@dg.asset(
    group_name="reward",
    kinds={"pytorch", "mlflow"},
    # online_features: the Feast registry and online store (after feature_registry) are built.
    deps=[dg.AssetKey("pretrained_policy"), dg.AssetKey("online_features")],
    description=(
        "Reward model: K shallow two-tower heads (seeds + bootstrap of users) on the frozen "
        "pretrained policy's state, the title embedding and point-in-time Feast features, "
        "predicting the 1-5 reward of the next event; a judge ensemble on the other half of the "
        "users. Evaluated on the future-dated test split against user-mean / title-mean "
        "baselines (and the simulator's true satisfaction). MLflow experiment `reward`; report "
        "in reports/reward.json; models under models/reward_model and models/reward_judge."
    ),
)
def reward_model(context: dg.AssetExecutionContext, config: RewardConfig) -> dg.MaterializeResult:
    root = data_dir()
    raw = read_fingerprint(root) or {}
    source = Path(raw["path"]).stem if raw.get("source") == "movielens" else raw.get("source", "?")
    result = run_reward_stage(
        config.settings(),
        root=root,
        log=context.log.info,
        tags={"dagster_run_id": context.run.run_id},
        dataset=source,
    )
    write_report("reward", result.report)
    table = result.report["test"][source]
    metadata = {
        "results": dg.MetadataValue.md(result.table_markdown),
        "test_events": result.report["test_events"],
        "mlflow_run_id": result.run_id,
        "mlflow_tracking_uri": tracking_uri(root),
        "model_dir": dg.MetadataValue.path(str(result.model_dir)),
        "judge_dir": dg.MetadataValue.path(str(result.judge_dir)),
        "calibration_plot": image(result.calibration_png, "reward calibration"),
        "test_predictions": dg.MetadataValue.path(str(result.predictions_path)),
        "seconds": result.report["seconds"]["total"],
    }
    for predictor in ("reward_model", "reward_judge", "user_mean", "title_mean", "global_mean"):
        metadata[f"rmse_{predictor}"] = table[predictor]["rmse"]
    return dg.MaterializeResult(metadata=metadata)
