"""``python main.py doctor``: check a deployment end to end and say what to fix.

Each check prints one line (a mark, a short name, what was found) and, when it fails, an
indented ``fix:`` line. Settings are loaded as ``serve`` loads them (``.env`` first); the
checks then talk to Twilio (or the emulator), to the bridge at PUBLIC_URL, and to the
store, leaving nothing behind. Secrets are never printed; SIDs only in a masked form.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

import aiohttp
from dotenv import load_dotenv

from bridge.config import ConfigError, Settings, load_settings
from bridge.conversations import TwilioClient
from bridge.doctor.checks import (
    check_database,
    check_manifest,
    check_public_url,
    check_routing,
    check_settings,
    check_taskrouter,
    check_twilio,
    check_webhook,
    doctor_twilio,
)
from bridge.doctor.results import (
    ASCII_MARKS,
    CHECK_NAMES,
    UNICODE_MARKS,
    CheckResult,
    failed,
    is_under,
    skipped,
)
from bridge.logs import mask
from bridge.routing import build_router

__all__ = [
    "CHECK_NAMES",
    "CheckResult",
    "check_routing",
    "exit_code",
    "is_under",
    "main",
    "mask",
    "render",
    "run_checks",
]


# --- running and reporting --------------------------------------------------------------


async def run_checks(
    settings_env: Mapping[str, str] | None = None, *, request_seconds: float = 5.0
) -> list[CheckResult]:
    """Run every check against ``settings_env`` (``os.environ`` by default), in order.

    Each HTTP request and the Twilio call get at most ``request_seconds``.
    """
    env = os.environ if settings_env is None else settings_env
    try:
        settings = load_settings(env)
    except ConfigError as error:
        return [
            failed("settings", "the bridge would refuse to start with these settings", str(error)),
            *(skipped(name, "needs valid settings") for name in CHECK_NAMES[1:]),
        ]
    results = [check_settings(settings)]
    twilio = doctor_twilio(settings, request_seconds)
    try:
        twilio_ok = await check_twilio(settings, twilio)
        results.append(twilio_ok)
        if twilio_ok.status == "pass":
            results.append(await check_routing(build_router(settings, twilio)))
        else:
            results.append(skipped("routing", "Twilio did not accept the credentials"))
        client_timeout = aiohttp.ClientTimeout(total=request_seconds)
        headers = {"User-Agent": "flex-bridge-doctor"}
        async with aiohttp.ClientSession(timeout=client_timeout, headers=headers) as http:
            results.extend(await _reachability(http, settings, twilio, twilio_ok, request_seconds))
    finally:
        await twilio.close()
    results.append(await check_database(settings))
    return results


async def _reachability(
    http: aiohttp.ClientSession,
    settings: Settings,
    twilio: TwilioClient,
    twilio_ok: CheckResult,
    seconds: float,
) -> list[CheckResult]:
    """PUBLIC_URL, the manifest, and the two webhook routes, as Twilio would reach them."""
    health = await check_public_url(http, settings, seconds)
    if health.status != "pass":
        why = "PUBLIC_URL does not lead to the bridge"
        return [health, *(skipped(name, why) for name in ("manifest", "webhook", "taskrouter"))]
    manifest, advertised = await check_manifest(http, settings, seconds)
    if not settings.webhooks:
        why = "WEBHOOKS=off: the bridge polls Twilio"
        return [health, manifest, skipped("webhook", why), skipped("taskrouter", why)]
    webhook = await check_webhook(http, settings, seconds, advertised)
    if twilio_ok.status != "pass":
        events = skipped("taskrouter", "Twilio did not accept the credentials")
    else:
        events = await check_taskrouter(http, settings, twilio, seconds)
    return [health, manifest, webhook, events]


def _can_print(stream: TextIO, text: str) -> bool:
    try:
        text.encode(stream.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def render(results: list[CheckResult], *, unicode: bool = True) -> str:
    """The report: one line per check, an indented ``fix:`` under each failure, a summary."""
    marks = UNICODE_MARKS if unicode else ASCII_MARKS
    mark_width = max(len(m) for m in marks.values())
    name_width = max((len(r.name) for r in results), default=0)
    lines = ["Flex Bridge doctor", ""]
    indent = " " * (mark_width + 1 + 4)
    for result in results:
        lines.append(
            f"{marks[result.status]:<{mark_width}} {result.name:<{name_width}}  {result.detail}"
        )
        if result.status == "fail" and result.fix:
            lines += textwrap.wrap(
                result.fix,
                width=100,
                initial_indent=f"{indent}fix: ",
                subsequent_indent=f"{indent}     ",
                break_on_hyphens=False,
            )
    failed = sum(r.status == "fail" for r in results)
    skipped = sum(r.status == "skip" for r in results)
    lines.append("")
    if failed:
        summary = f"{failed} check{'s' if failed != 1 else ''} failed"
        if skipped:
            summary += f", {skipped} skipped"
        lines.append(f"{summary}: fix the first failure above and run the doctor again.")
    else:
        lines.append(
            "All checks passed." if not skipped else f"All checks passed ({skipped} skipped)."
        )
    text = "\n".join(lines)
    if not unicode:
        text = text.replace("…", "...").replace("\u2013", "-")
        text = text.encode("ascii", errors="replace").decode("ascii")
    return text


def exit_code(results: list[CheckResult]) -> int:
    """0 when every check that ran passed, 1 otherwise."""
    return 1 if any(r.status == "fail" for r in results) else 0


def main() -> int:
    """Load settings as ``serve`` does, run the checks, print the report; the exit code."""
    load_dotenv(Path.cwd() / ".env")  # the working directory's, not a parent's
    logging.getLogger("twilio").setLevel(logging.WARNING)
    results = asyncio.run(run_checks())
    text = render(results)
    if not _can_print(sys.stdout, text):
        text = render(results, unicode=False)
    print(text, flush=True)
    return exit_code(results)
