"""The installed package's version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    try:
        return version("flex-bridge")
    except PackageNotFoundError:  # a checkout run without installing
        return "unknown (not installed)"
