"""Automation: the jobs, their schedules, the landing sensor and the daily partitions."""
