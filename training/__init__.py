"""Pretraining core: user sequences -> HSTU/SASRec next-item policy, trained by behaviour cloning.

Nothing here knows Dagster or MLflow; callers pass `log` / `on_epoch_end` hooks. Entry points:
`data.build_dataset` (Arrow `user_sequences` -> ids, splits, batches), `pretrain.pretrain`
(train, early-stop, checkpoint, resume), `evaluate.evaluate` / `evaluate.evaluate_popularity`
(full-catalogue ranking, seen items excluded), `pretrain.load_checkpoint`, and
`experiment.compare` (HSTU vs SASRec vs popularity over seeds).
"""
