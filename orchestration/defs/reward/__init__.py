"""The reward model (trainer and judge ensembles) and its predictions gate."""
