"""Flex Bridge from a checkout: ``python main.py [serve|doctor|sandbox|--version]``, the
same as the installed ``flex-bridge`` command (bridge/cli.py)."""

from __future__ import annotations

import sys

from bridge.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="main.py"))
