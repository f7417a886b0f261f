"""Dagster orchestration only: thin assets that call plain functions in the domain packages."""
