"""The reward-corruption robustness study: the logged reward corrupted at a level (corruption.py),
the reward features re-derived from it (rewardstats.py), every post-training method retrained
per level against retrained reward models and judges (world.py, condition.py, study.py), an
independent judge (judge.py), and the table, plot and judge-validity figures (report.py).

Sits above the training stages (it drives pretrain, reward and posttrain), below orchestration.
"""
