"""Loading the code location runs nothing: no environment variable written, no subprocess
started by the project's code (dbt parse is `make prepare`'s), the dbt manifest untouched.
(Libraries may probe the platform at import: Dagster's croniter and MLflow run `file`/`uname`.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from orchestration.prepare import DBT_MANIFEST, manifest_is_stale

PROBE = """
import json, os, subprocess, sys, sysconfig, traceback
before = dict(os.environ)
started = []
original = subprocess.Popen.__init__
libraries = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], "<frozen")
def record(self, *args, **kwargs):
    # Who asked: the innermost caller outside the standard library and site-packages.
    caller = next(f for f in reversed(traceback.extract_stack()[:-1])
                  if not f.filename.startswith(libraries) or "site-packages" in f.filename)
    if "site-packages" not in caller.filename:
        started.append(f"{caller.filename}:{caller.lineno} {args[:1]!r}")
    return original(self, *args, **kwargs)
subprocess.Popen.__init__ = record
import orchestration.definitions
changed = sorted(k for k in {*before, *os.environ} if before.get(k) != os.environ.get(k))
print(json.dumps({"changed": changed, "started": started}))
"""


def test_importing_the_definitions_changes_no_environment_and_starts_no_subprocess():
    assert not manifest_is_stale()  # the session start prepared it
    mtime = DBT_MANIFEST.stat().st_mtime_ns
    env = {k: v for k, v in os.environ.items() if k != "ASFT_DATA_DIR"}  # nothing to pin it to
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PROBE],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe == {"changed": [], "started": []}
    assert DBT_MANIFEST.stat().st_mtime_ns == mtime
