"""Fetch ML-100K on the user's machine (its license forbids redistributing it with the project).

The RecBole wheel ships it as an atomic file; pip fetches the wheel from the configured package
index, and only the ratings member is extracted:

    python -m watchlogs.fetch_ml100k [--dest DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from common.paths import data_dir

RECBOLE_REQUIREMENT = "recbole==1.2.1"
MEMBER = "recbole/dataset_example/ml-100k/ml-100k.inter"
FILE_NAME = "ml-100k.inter"

Downloader = Callable[[Path], Path]  # download into a directory, return the wheel's path


def default_dest() -> Path:
    return data_dir() / "sources" / "ml-100k"


def pip_download(directory: Path) -> Path:
    """`pip download --no-deps recbole==1.2.1` into `directory`; returns the wheel."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--disable-pip-version-check", "-q", RECBOLE_REQUIREMENT, "-d", str(directory)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pip download {RECBOLE_REQUIREMENT} failed:\n{done.stderr.strip()}")
    wheels = sorted(Path(directory).glob("recbole-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download {RECBOLE_REQUIREMENT} produced no wheel in {directory}")
    return wheels[0]


def fetch_ml100k(dest: Path | None = None, downloader: Downloader | None = None) -> Path:
    """Path of `<dest>/ml-100k.inter`, downloading and extracting it if not already present.

    `downloader` defaults to `pip_download` (looked up at call time, so tests can replace it).
    """
    dest = Path(dest) if dest is not None else default_dest()
    target = dest / FILE_NAME
    if target.is_file():
        return target
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="recbole-") as tmp:
        wheel = (downloader or pip_download)(Path(tmp))
        with zipfile.ZipFile(wheel) as archive:
            if MEMBER not in archive.namelist():
                raise RuntimeError(f"{wheel.name} does not contain {MEMBER}")
            partial = target.with_name(f".{FILE_NAME}.part")
            with archive.open(MEMBER) as src, partial.open("wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
    os.replace(partial, target)  # never leave a truncated file under the final name
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=None, help="default: <data>/sources/ml-100k")
    args = parser.parse_args(argv)
    print(fetch_ml100k(args.dest))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
