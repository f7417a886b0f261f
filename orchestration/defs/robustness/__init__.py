"""The reward-corruption robustness study: its own asset group, its own job and its own
Definitions (location.py), off the default main_job."""
