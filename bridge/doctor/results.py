"""What a doctor check reports, and showing values in it without giving secrets away."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import SplitResult, urlsplit, urlunsplit

import aiohttp

from bridge.config import Settings

Status = Literal["pass", "fail", "skip"]

#: The checks, in the order they run and are printed.
CHECK_NAMES = (
    "settings",
    "twilio",
    "routing",
    "public_url",
    "manifest",
    "webhook",
    "taskrouter",
    "database",
)

#: A conversation SID no bridge ever stores: the webhook probe is answered but changes nothing.
PROBE_CONVERSATION_SID = "CH" + "0" * 32

UNICODE_MARKS = {"pass": "✓", "fail": "✗", "skip": "\u2013"}
ASCII_MARKS = {"pass": "ok", "fail": "FAIL", "skip": "skip"}


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome; ``fix`` says what to do when it failed."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def passed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, "pass", detail)


def failed(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, "fail", detail, fix)


def skipped(name: str, why: str) -> CheckResult:
    return CheckResult(name, "skip", f"skipped: {why}")


# --- showing values safely --------------------------------------------------------------


def shown_url(url: str) -> str:
    """``url`` without any user name or password in it."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"…@{host}"))


def origin_of(parts: SplitResult) -> tuple[str, str, int] | None:
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return (parts.scheme, (parts.hostname or "").lower(), port)


def is_under(url: str, base: str) -> bool:
    """Whether ``url`` has ``base``'s scheme, host and port, and a path at or below its path."""
    got, want = urlsplit(url), urlsplit(base)
    origin = origin_of(got)
    if origin is None or origin != origin_of(want):
        return False
    prefix = want.path.rstrip("/")
    return not prefix or got.path == prefix or got.path.startswith(prefix + "/")


def mode_of(settings: Settings) -> str:
    if settings.twilio_api_base_url:
        return f"Conversations API at {shown_url(settings.twilio_api_base_url)} (not Twilio)"
    if settings.sandbox:
        return f"sandbox (Twilio emulated inside the bridge at {settings.local_url})"
    return "real Twilio"


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def http_failure(error: BaseException, seconds: float) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {seconds:g} s"
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return "its TLS certificate is not valid"
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"cannot connect ({error.os_error.strerror or type(error.os_error).__name__})"
    return f"{type(error).__name__}: {error}"
