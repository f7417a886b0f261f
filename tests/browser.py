"""Debian's headless Chromium as the browser tests start it (`make sysdeps` installs it).

The flags keep it off the network: without the background-networking ones it keeps trying to
reach Google's hosts, which this machine's closed network refuses.
"""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Locally a missing browser skips the test; CI (CI=true) always runs it.
SKIP_WITHOUT_CHROMIUM = not CHROMIUM.exists() and not os.environ.get("CI")
