"""Every path under a run's data directory, named once.

`DataLayout(root)` is the one place that knows where a stage reads and writes; the helper
functions in `common/paths.py`, `features/store.py` and `validation/paths.py` are accessors of
it. Properties only name paths: nothing is created here, callers `mkdir` what they write.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataLayout:
    root: Path

    # ---- raw data and the warehouse -----------------------------------------------------------
    @property
    def raw_watch_logs(self) -> Path:
        """Daily-partitioned Parquet: raw/watch_logs/date=YYYY-MM-DD/*.parquet."""
        return self.root / "raw" / "watch_logs"

    @property
    def raw_titles(self) -> Path:
        """The titles table (durations) written beside the raw logs."""
        return self.root / "raw" / "titles.parquet"

    @property
    def oracle(self) -> Path:
        """The simulator's hidden truth; read by evaluation only, never by training."""
        return self.root / "oracle"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def dbt_parse(self) -> Path:
        """dbt's parse of the project for this data directory (partial_parse.msgpack), from the
        last successful dbt step; each dbt step starts from it (a partial parse)."""
        return self.root / "dbt" / "partial_parse.msgpack"

    @property
    def warehouse_built_from(self) -> Path:
        """Which raw partitions the warehouse was last built from (incremental dbt)."""
        return self.root / "warehouse.built_from.json"

    @property
    def sources(self) -> Path:
        """Downloaded or extracted public data sets (never in git)."""
        return self.root / "sources"

    # ---- landing and quarantine ---------------------------------------------------------------
    @property
    def landing(self) -> Path:
        """Deliveries are dropped here: one Parquet file = one delivery."""
        return self.root / "landing" / "watch_logs"

    @property
    def ingested(self) -> Path:
        """Deliveries that became raw partitions are archived here."""
        return self.root / "landing" / "ingested"

    @property
    def landing_result(self) -> Path:
        """The last ingestion's outcome (JSON), read by the raw_watch_logs gate."""
        return self.root / "landing" / "last_ingest.json"

    @property
    def quarantine(self) -> Path:
        """files/ (rejected deliveries), held/ (held-back deliveries), rows/ (offending rows)."""
        return self.root / "quarantine"

    # ---- services -----------------------------------------------------------------------------
    @property
    def features(self) -> Path:
        """Feast: feature_store.yaml, registry.db, online.db, offline/*.parquet."""
        return self.root / "features"

    @property
    def features_offline(self) -> Path:
        """Feast's offline store: one Parquet file per feature view."""
        return self.features / "offline"

    @property
    def mlflow(self) -> Path:
        """MLflow: mlflow.db (tracking and registry, sqlite) and artifacts/."""
        return self.root / "mlflow"

    @property
    def gx(self) -> Path:
        """The Great Expectations context (suites, results, Data Docs)."""
        return self.root / "gx"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def logs(self) -> Path:
        """Each run's full event log as text: logs/<job>-<UTC time>.log (`make run`) or
        logs/<run id>.log (runs launched elsewhere, e.g. from the UI)."""
        return self.root / "logs"

    @property
    def dbt_docs(self) -> Path:
        """The dbt docs site (`make docs`): index.html, static_index.html, catalog, manifest."""
        return self.root / "dbt_docs"

    # ---- models and stage outputs -------------------------------------------------------------
    @property
    def pretrain_checkpoints(self) -> Path:
        """One directory per run, data and settings hash: a checkpoint per epoch."""
        return self.root / "checkpoints" / "pretrain"

    @property
    def pretrained_policy(self) -> Path:
        """The policy handed to post-training: best.pt, vocab.json, mlflow_run.json."""
        return self.root / "models" / "pretrained_policy"

    @property
    def reward_model(self) -> Path:
        """The trainer's reward ensemble."""
        return self.root / "models" / "reward_model"

    @property
    def reward_judge(self) -> Path:
        """The judge ensemble (evaluation only), trained on the other half of the users."""
        return self.root / "models" / "reward_judge"

    @property
    def reward_outputs(self) -> Path:
        """test_predictions.parquet and calibration.json of the reward stage."""
        return self.root / "reward"

    @property
    def reward_test_predictions(self) -> Path:
        return self.reward_outputs / "test_predictions.parquet"

    @property
    def advantages(self) -> Path:
        """r_hat, V and A for every training target of the temporal split."""
        return self.root / "advantages" / "advantages.parquet"

    @property
    def champion(self) -> Path:
        """The registered post-trained champion (best.pt, vocab.json, champion.json)."""
        return self.root / "models" / "champion"

    @property
    def batch_recommendations(self) -> Path:
        return self.root / "recommendations" / "batch_recs.parquet"

    # ---- reports --------------------------------------------------------------------------------
    @property
    def reports(self) -> Path:
        """reports/<stage>.json and .md: each stage's headline figures."""
        return self.root / "reports"

    def stage_reports(self, stage: str) -> Path:
        """A stage's tables and plots beside its report: reports/<stage>/."""
        return self.reports / stage

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    def plot(self, name: str) -> Path:
        return self.plots / f"{name}.png"
