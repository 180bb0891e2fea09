"""Debian's Chromium for the browser tests (``sudo apt-get install chromium``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = (
        f"Chromium is not installed at {CHROMIUM}; the agent console's browser tests need it. "
        "Install it with `sudo apt-get install chromium`."
    )
    if "CI" in os.environ:
        pytest.fail(message)
    pytest.skip(message)
