"""The HTTP front door: thin routes over the core, one blueprint per concern."""

from __future__ import annotations

from quart import current_app

from bridge.services import Services


def services() -> Services:
    """The services the app's start-up wired (see :func:`bridge.services.build_services`)."""
    found: Services = current_app.extensions["bridge"]
    return found
