"""Every run config under configs/ is valid for the main job: a typo fails here, not an hour in."""

from pathlib import Path

import dagster as dg
import pytest
import yaml

from orchestration.definitions import defs, robustness_defs

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_run_config_validates_against_the_main_job(path):
    # The robustness study has its own Definitions and job, off main_job.
    if path.name == "robustness.yaml":
        job = robustness_defs.resolve_job_def("robustness_job")
    else:
        job = defs.resolve_job_def("main_job")
    dg.validate_run_config(job, yaml.safe_load(path.read_text()))


def test_a_misspelt_field_is_refused():
    bad = {"ops": {"posttrained_policies": {"config": {"method_beta": {"dpo": [0.1]}}}}}
    with pytest.raises(dg.DagsterInvalidConfigError, match="method_beta"):
        dg.validate_run_config(defs.resolve_job_def("main_job"), bad)
