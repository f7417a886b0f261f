"""`mlflow models serve` of a registered policy on the loopback interface, in this environment.

    with model_server(root, "models:/asft-recommender@champion") as url:
        requests.post(url, json={"dataframe_records": [...], "params": {"k": 10}})

The server is MLflow's own (uvicorn behind `mlflow models serve`), started with
`--env-manager local`: the model's requirements are this environment's pins, so nothing is built
at serve time. It runs in its own process group (uvicorn is its child and outlives a plain
SIGTERM to the parent), and is stopped through that group, by its own process id.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from common.tracking import tracking_uri

HOST = "127.0.0.1"


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with closing(socket.socket()) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextmanager
def model_server(
    root: Path,
    model_uri: str,
    port: int | None = None,
    ready_seconds: float = 180.0,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Serve `model_uri` from `root`'s MLflow store on 127.0.0.1; yields the /invocations URL
    once /ping answers. `env` adds to the server's environment (e.g. OMP_NUM_THREADS)."""
    port = port or free_port()
    bin_dir = str(Path(sys.executable).parent)  # `mlflow models serve` execs uvicorn from PATH
    server_env = os.environ | {
        "MLFLOW_TRACKING_URI": tracking_uri(root),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
           "-h", HOST, "-p", str(port), "--env-manager", "local"]  # fmt: skip
    log_path = Path(root) / "logs" / f"model_server_{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        server = subprocess.Popen(cmd, env=server_env | (env or {}), stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            _wait_ready(server, f"http://{HOST}:{port}/ping", ready_seconds, log_path)
            yield f"http://{HOST}:{port}/invocations"
        finally:
            stop(server)


def _wait_ready(server: subprocess.Popen, ping: str, seconds: float, log_path: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the model server exited: {log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(ping, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"the model server did not answer {ping} in {seconds:.0f}s ({log_path})")


def stop(server: subprocess.Popen, grace_seconds: float = 30.0) -> None:
    """SIGTERM to the server's own process group (its id is the server's pid), SIGKILL if it
    lingers; the group is signalled even if the parent is gone, so uvicorn is never left."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        server.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
