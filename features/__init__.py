"""The Feast feature store of the reward features: entities user and title, reward-statistics
feature views over the dbt marts (offline: Parquet files; online: sqlite, Redis by config).

Modules: `export` (warehouse -> Parquet offline sources), `repo` (the Feast objects), `store` (the
FeatureStore of a data directory, `feast apply`, materialization), `retrieval` (point-in-time
historical features), `online` (online reads and a direct sqlite read for the benchmark).
Importing Feast costs seconds: Dagster asset modules import these lazily, inside the asset bodies.
"""
