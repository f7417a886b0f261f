"""Training, one package per stage over a shared core (docs/design.md has the map).

- `core`: data (warehouse sequences -> ids, splits, batches), configs, losses, the one catalogue
  scorer, ranking metrics and evaluation, checkpoints, statistics.
- `models`: the sequence encoders (HSTU-style, SASRec) behind one interface.
- `pretrain`: behaviour cloning (loop, DDP launch, the stage, the HSTU/SASRec comparison).
- `reward`: the reward-model contract, the ensemble, its training, evaluation, online scoring,
  the stage.
- `posttrain`: advantages, the fine-tuning loop, the method registry (`methods/`), evaluation,
  the champion rule and the study.
- `serving`: the policy as an MLflow model, batch recommendations, the recommend command.

Nothing here knows Dagster; stage modules take a settings dataclass and a data layout.
"""
