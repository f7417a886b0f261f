"""Post-training: advantages, the study (A-SFT and the baselines over betas and seeds) with its
evaluation and the champion decision, and the champion's batch recommendations."""

from pathlib import Path

import dagster as dg

from common.paths import data_dir
from common.tracking import tracking_uri
from orchestration.metadata import image
from orchestration.resources import DUCKDB_WRITER_POOL
from training.posttrain.stage import (
    AdvantagesSettings,
    PosttrainSettings,
    run_advantages,
    run_posttrain_study,
)
from training.serving.batch import TABLE, BatchSettings, write_batch_recommendations
from watchlogs.sources import read_fingerprint

_REWARD_MODEL = dg.AssetKey("reward_model")


def _dataset(root: Path) -> str:
    """ "simulator", or the MovieLens file's name (e.g. "ml-100k"), as the other reports."""
    raw = read_fingerprint(root) or {}
    return Path(raw["path"]).stem if raw.get("source") == "movielens" else raw.get("source", "?")


class AdvantagesConfig(dg.Config):
    """r_hat from the trainer's reward ensemble: its mean minus `lcb` standard deviations;
    V(s) over the whole catalogue, or the policy's `top_k` items (large catalogues)."""

    lcb: float = 0.0
    top_k: int | None = None
    batch_size: int = 256  # states per reward-model call: fewer per-day catalogue passes


@dg.asset(
    group_name="posttrain",
    kinds={"pytorch", "parquet"},
    deps=[dg.AssetKey("pretrained_policy"), _REWARD_MODEL],
    description=(
        "A = r_hat(s, a) - V(s) for every logged training event of the temporal split, with "
        "V(s) = E_{a ~ pi_pretrained} r_hat(s, a) over the catalogue; Parquet under "
        "<data>/advantages/."
    ),
)
def advantages(context: dg.AssetExecutionContext, config: AdvantagesConfig) -> dg.MaterializeResult:
    result = run_advantages(
        data_dir(),
        AdvantagesSettings(lcb=config.lcb, top_k=config.top_k, batch_size=config.batch_size),
        log=context.log.info,
    )
    stats = result.stats
    table = "| statistic | value |\n| --- | --- |\n" + "\n".join(
        f"| {k} | {v:.4g} |" for k, v in stats.items()
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": stats["rows"],
            "stats": dg.MetadataValue.md(table),
            "mean": stats["mean"],
            "std": stats["std"],
            "fraction_positive": stats["fraction_positive"],
            "max_abs_policy_weighted_advantage": result.state_sum_max_abs,
            "histogram": image(result.histogram, "advantages"),
            "histogram_path": dg.MetadataValue.path(str(result.histogram)),
            "path": dg.MetadataValue.path(str(result.path)),
            "seconds": round(result.seconds, 1),
        }
    )


class PosttrainStudyConfig(dg.Config):
    """The study. Defaults are small so the default run ends in minutes;
    configs/posttrain-full.yaml runs every method over a wide beta sweep with 5 seeds."""

    methods: list[str] = ["bc", "asft"]
    betas: list[float] = [0.1, 1.0, 10.0]
    # A method's own sweep, e.g. {dpo: [0.1], ppo: [0.1, 1.0]}; the others take `betas`.
    method_betas: dict[str, list[float]] = {}
    seeds: list[int] = [0, 1, 2]
    steps: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    weight_clip: float = 20.0
    self_normalise: bool = True
    eval_users: int | None = 1000  # slate states, one per test user; None = all
    max_ranking_targets: int | None = 5000  # sampled once; None = every above-median target
    require_significant: bool = False
    registered_model_name: str = "asft-recommender"
    # None: torch's default (every core). On a box shared with other jobs, 1 thread can be far
    # faster for these small models (OpenMP threads wait on each other).
    num_threads: int | None = None

    def settings(self) -> PosttrainSettings:
        return PosttrainSettings(
            methods=tuple(self.methods),
            betas=tuple(self.betas),
            method_betas={m: tuple(b) for m, b in self.method_betas.items()},
            seeds=tuple(self.seeds),
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_clip=self.weight_clip,
            self_normalise=self.self_normalise,
            eval_users=self.eval_users,
            max_ranking_targets=self.max_ranking_targets,
            require_significant=self.require_significant,
            registered_model_name=self.registered_model_name,
            num_threads=self.num_threads,
        )


@dg.asset(
    group_name="posttrain",
    kinds={"pytorch", "mlflow"},
    deps=[advantages, _REWARD_MODEL],
    description=(
        "Every method x beta x seed fine-tuned from the pretrained policy, then evaluated: "
        "NDCG/HR/MRR on above-median future targets, the judge ensemble's reward of the top-10, "
        "the simulator's normalised true satisfaction, KL and top-10 overlap vs the pretrained "
        "policy. Results table and beta-sweep plot in MLflow (experiment `posttrain`) and "
        "reports/posttrain.json; the best policy is registered (alias `champion`) only where it "
        "beats BC."
    ),
)
def posttrained_policies(
    context: dg.AssetExecutionContext, config: PosttrainStudyConfig
) -> dg.MaterializeResult:
    root = data_dir()
    result = run_posttrain_study(
        config.settings(),
        root,
        _dataset(root),
        log=context.log.info,
        tags={"dagster_run_id": context.run.run_id},
    )
    champion = result.champion
    return dg.MaterializeResult(
        metadata={
            "results": dg.MetadataValue.md(result.table_md),
            "beta_sweep": image(result.plot, "beta sweep"),
            "beta_sweep_path": dg.MetadataValue.path(str(result.plot)),
            "table_csv": dg.MetadataValue.path(str(result.table_csv)),
            "table_md": dg.MetadataValue.path(str(result.table_md_path)),
            "champion": champion.get("label") or "none",
            "champion_registered": champion["registered"],
            "champion_reason": champion["reason"],
            "champion_model_version": str(champion.get("model_version", "none")),
            "mlflow_study_run_id": result.study_run_id,
            "mlflow_policy_runs": len(result.policy_run_ids),
            "mlflow_tracking_uri": tracking_uri(root),
            "seconds_train": result.seconds["train"],
            "seconds_evaluate": result.seconds["evaluate"],
        }
    )


class BatchRecommendationsConfig(dg.Config):
    k: int = 10
    active_days: float = 7.0  # users with an event in the last N days of the data


@dg.asset(
    group_name="posttrain",
    kinds={"parquet", "duckdb"},
    deps=[posttrained_policies],
    pool=DUCKDB_WRITER_POOL,
    description=(
        f"The champion's (else the pretrained policy's) top-k for every active user, seen items "
        f"excluded, with the model name and version: <data>/recommendations/batch_recs.parquet "
        f"and the warehouse table {TABLE}."
    ),
)
def batch_recommendations(config: BatchRecommendationsConfig) -> dg.MaterializeResult:
    path, table = write_batch_recommendations(
        data_dir(), BatchSettings(config.k, config.active_days)
    )
    versions = sorted(set(table["model_version"].to_pylist()))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.num_rows,
            "users": len(set(table["user_id"].to_pylist())),
            "model_name": ",".join(sorted(set(table["model_name"].to_pylist()))) or "none",
            "model_version": ",".join(versions) or "none",
            "path": dg.MetadataValue.path(str(path)),
            "warehouse_table": TABLE,
        }
    )
