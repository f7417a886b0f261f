"""`asft`: the pipeline's command line (installed with the package, `[project.scripts]`).

    asft recommend --user u000042 --k 10
    asft serve --port 5001

`recommend` prints what the user should watch next: one line per title with its rank, title id,
the policy's score and the trainer's reward ensemble's r_hat mean and spread, from the served
policy (the registry alias, else the pretrained policy) and the user's history in the Feast
online store (training/serving/online.py says why that store). Exit code 2 for a user the store
does not know. `serve` runs `mlflow models serve` of the same policy on 127.0.0.1 until Ctrl-C.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

# Progress bars of artifact downloads would interleave with the table.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])
UNKNOWN_USER = 2


@app.callback()
def main() -> None:
    """A-SFT pipeline commands."""


def _number(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.3f}"


@app.command()
def recommend(
    user: Annotated[str, typer.Option(help="user id as in the watch logs")],
    k: Annotated[int, typer.Option(min=1, help="titles to recommend")] = 10,
    at: Annotated[
        float | None, typer.Option(help="request time, epoch seconds (default: now)")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="data directory (default: ASFT_DATA_DIR or data/)")
    ] = None,
    model_name: Annotated[str, typer.Option(help="MLflow registered model")] = "asft-recommender",
    alias: Annotated[str, typer.Option(help="registry alias to serve")] = "champion",
) -> None:
    """What USER should watch next, and why (the reward ensemble's r_hat)."""
    from common.paths import data_dir as default_data_dir
    from training.serving.online import OnlineRecommender, UnknownUser

    console = Console(soft_wrap=True)  # one line per message, however narrow the terminal
    recommender = OnlineRecommender(data_dir or default_data_dir(), model_name, alias)
    try:
        recs = recommender.recommend(user, k, at)
    except UnknownUser as e:
        console.print(f"[bold red]unknown user:[/] {e}; no recommendations")
        raise typer.Exit(UNKNOWN_USER) from None
    served = recs.served
    when = datetime.fromtimestamp(recs.request_ts, UTC).isoformat(timespec="seconds")
    console.print(
        f"user {user}: {len(recs.titles)} titles from {served.name} version {served.version}"
        f" ({served.alias or 'no registered champion: the pretrained policy'}), asked at {when}"
    )
    console.print(
        f"history: {recs.history_length} recent titles from the Feast online store, "
        "each excluded from the list"
    )
    if recs.ignored_item_ids:
        console.print(f"ignored {len(recs.ignored_item_ids)} title(s) the policy does not know")
    if recs.source == "popularity":
        console.print(
            "[bold yellow]no usable history:[/] popularity fallback (each title's share of the "
            "events the policy was trained on), not a personalised ranking"
        )
    if not recs.reward_model:
        console.print("no reward ensemble under the data directory: r_hat is n/a")
    score = "popularity" if recs.source == "popularity" else "policy score"
    table = Table("rank", "title", score, "r_hat mean", "r_hat spread", box=None)
    for row in recs.titles.itertuples():
        table.add_row(
            str(row.rank),
            row.item_id,
            f"{row.score:.4f}",
            _number(row.r_hat_mean),
            _number(row.r_hat_std),
        )
    console.print(table)


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="loopback port to listen on")] = 5001,
    data_dir: Annotated[
        Path | None, typer.Option(help="data directory (default: ASFT_DATA_DIR or data/)")
    ] = None,
    model_name: Annotated[str, typer.Option(help="MLflow registered model")] = "asft-recommender",
    alias: Annotated[str, typer.Option(help="registry alias to serve")] = "champion",
) -> None:
    """Serve the policy (the alias, else the pretrained policy) on 127.0.0.1 until Ctrl-C."""
    from common.paths import data_dir as default_data_dir
    from training.serving.registry import resolve_policy
    from training.serving.server import model_server

    root = data_dir or default_data_dir()
    served = resolve_policy(root, model_name, alias)
    # Ctrl-C and SIGTERM both leave through the `with`, which stops the server's process group;
    # SIGINT is re-armed because a shell's background job inherits it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with model_server(root, served.uri, port) as url:
        Console().print(f"serving {served.name} version {served.version} at {url}; Ctrl-C stops")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    app()
