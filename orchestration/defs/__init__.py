"""The code location by stage: each package holds its assets and the asset checks that guard
them; `automation/` holds the jobs, schedules, sensors and partitions that run them."""
