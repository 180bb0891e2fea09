"""Flex Bridge benchmarks: ``make bench`` or ``.venv/bin/python bench/run.py [--quick]``.

Starts the Conversations emulator and the bridge as separate processes on loopback ports
with temporary databases, drives them with asyncio/aiohttp, and writes
bench/results/latest.json and docs/latency.png. ``--help`` lists the options.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: import from the repository root (``bench`` as a package), not from
    # this folder.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.main import main

if __name__ == "__main__":
    sys.exit(main())
