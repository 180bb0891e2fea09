"""The doctor's checks: settings, Twilio, routing, PUBLIC_URL, manifest, webhook, the
TaskRouter event callback, database."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import yaml
from twilio.request_validator import RequestValidator

from bridge.config import Settings
from bridge.conversations import (
    TwilioClient,
    TwilioError,
    TwilioRejected,
    TwilioUnavailable,
)
from bridge.core.inbox import TASK_EVENTS
from bridge.doctor.results import (
    PROBE_CONVERSATION_SID,
    CheckResult,
    failed,
    http_failure,
    is_loopback,
    is_under,
    mode_of,
    passed,
    shown_url,
    skipped,
)
from bridge.hours import hours_now
from bridge.logs import mask
from bridge.routing import Router
from bridge.services import connect_twilio
from bridge.store import StoreUnavailable
from bridge.stores import open_store

# --- the checks -------------------------------------------------------------------------


def check_settings(settings: Settings) -> CheckResult:
    """Report the mode and the settings that matter, without secrets."""
    auth = settings.auth
    auth_detail = f"AUTH_MODE={auth.mode}"
    if auth.mode == "apikey":
        auth_detail += f" ({len(auth.api_keys)} key{'s' if len(auth.api_keys) != 1 else ''})"
    secret = "set" if settings.bridge_secret else "kept in the store (sandbox)"
    detail = (
        f"{mode_of(settings)}; account {mask(settings.twilio_account_sid)}; {auth_detail}; "
        f"webhooks {'on' if settings.webhooks else 'off'}; BRIDGE_SECRET {secret}; "
        f"{_waiting_detail(settings)}"
    )
    return passed("settings", detail)


def _waiting_detail(settings: Settings) -> str:
    """What waiting users are told: hours now, the policy, the timeout, queue figures."""
    hours = settings.business_hours
    if hours is None:
        said = "always open (no BUSINESS_HOURS)"
    else:
        now = hours_now(hours)()
        said = (
            "open now"
            if now["open"]
            else f"closed now, opens {now['opens_at'] or 'not within a year'}"
        )
    timeout = settings.assignment_timeout_seconds
    workspace = settings.twilio_workspace_sid
    figures = f"from {mask(workspace)}" if workspace else "off (no TWILIO_WORKSPACE_SID)"
    return (
        f"hours: {said}; UNAVAILABLE_POLICY={settings.unavailable_policy}; "
        f"choice after {f'{timeout:g} s' if timeout else 'never (off)'}; "
        f"queue figures {figures}"
    )


def _rejected_fix(settings: Settings, error: TwilioRejected) -> str:
    credentials = error.status == 401 or error.code == 20003
    if credentials and settings.sandbox and not settings.twilio_api_base_url:
        return (
            "TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN rejected: the sandbox inside the running "
            "bridge accepts only the credentials the bridge was started with. Run the doctor "
            "with the bridge's environment (the same .env), or unset both for the sandbox's own."
        )
    if credentials:
        return (
            "TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN rejected: copy them from the Twilio console "
            "(Account Info on the console's home page) into .env, then restart the bridge."
        )
    if error.status == 404 and settings.sandbox and not settings.twilio_api_base_url:
        return (
            f"The process at {settings.local_url} serves no sandbox: the bridge there was "
            "started with other settings (SANDBOX=0 or another Twilio API). Run the doctor "
            "with the bridge's environment (the same .env)."
        )
    if error.status == 404 and settings.twilio_api_base_url:
        return (
            f"TWILIO_API_BASE_URL ({shown_url(settings.twilio_api_base_url)}) does not serve "
            "the Conversations API: it is the base without /v1, e.g. "
            "http://127.0.0.1:5003/sandbox/twilio for the stand-alone sandbox."
        )
    code = f" (https://www.twilio.com/docs/api/errors/{error.code})" if error.code else ""
    return (
        f"Twilio refused the account's read of Conversations{code}: check that "
        "TWILIO_ACCOUNT_SID is the account (or subaccount) where Flex runs and that "
        "Conversations is enabled for it in the Twilio console."
    )


def _unavailable_fix(settings: Settings, error: TwilioUnavailable) -> str:
    if settings.twilio_api_base_url:
        return (
            f"Nothing usable answered at {shown_url(settings.twilio_api_base_url)}: start the "
            "emulator (e.g. `.venv/bin/python -m bridge.sandbox --port 5003`) or correct "
            "TWILIO_API_BASE_URL."
        )
    if settings.sandbox:
        return (
            "In sandbox mode the Twilio emulator lives inside the running bridge: start the "
            f"bridge with `make run` first (it must listen on {settings.local_url}, the "
            "HOST/PORT given here), then run the doctor again."
        )
    if error.status == 429:
        return "Twilio is rate-limiting this account: wait a minute and run the doctor again."
    return (
        "Twilio did not answer: check this machine's internet access (proxy, firewall, DNS "
        "for conversations.twilio.com) and https://status.twilio.com, then try again."
    )


def doctor_twilio(settings: Settings, seconds: float) -> TwilioClient:
    """The bridge's Twilio client, each call given at most ``seconds``; close it after."""
    shorter = min(seconds, settings.twilio_timeout_seconds)
    return connect_twilio(replace(settings, twilio_timeout_seconds=shorter))


async def check_twilio(settings: Settings, client: TwilioClient) -> CheckResult:
    """One cheap authenticated call with the configured credentials."""
    where = "Twilio"
    if settings.twilio_api_base_url:
        where = "the emulator"
    elif settings.sandbox:
        where = "the sandbox"
    try:
        await client.check_access()
    except TwilioRejected as error:
        status = f"HTTP {error.status}" if error.status else "refused"
        code = f", code {error.code}" if error.code else ""
        return failed(
            "twilio",
            f"{where} refused account {mask(settings.twilio_account_sid)} ({status}{code})",
            _rejected_fix(settings, error),
        )
    except TwilioUnavailable as error:
        why = f"HTTP {error.status}" if error.status else str(error).partition(": ")[2]
        return failed(
            "twilio", f"{where} could not be reached: {why}", _unavailable_fix(settings, error)
        )
    except TwilioError as error:
        return failed(
            "twilio",
            f"{where} answered unexpectedly ({error})",
            "Check TWILIO_API_BASE_URL (unset it for Twilio itself) and run the doctor again.",
        )
    return passed("twilio", f"account {mask(settings.twilio_account_sid)} accepted by {where}")


async def check_routing(router: Router) -> CheckResult:
    """What the router says of its settings (Studio: the flow SID; Interactions: the
    workspace, workflow and task channel as Twilio knows them): one line, the first
    failure's fix."""
    found = await router.check()
    broken = next((c for c in found if not c.ok), None)
    if broken is not None:
        return failed("routing", f"{broken.name}: {broken.detail}", broken.fix)
    if len(found) == 1:
        return passed("routing", found[0].detail)
    return passed("routing", "; ".join(f"{c.name} {c.detail}" for c in found))


async def check_taskrouter(
    http: aiohttp.ClientSession,
    settings: Settings,
    twilio: TwilioClient,
    seconds: float,
) -> CheckResult:
    """The Flex workspace's event callback points at PUBLIC_URL/twilio/taskrouter with the
    task events, and a correctly signed event sent there is accepted."""
    url = settings.taskrouter_event_url
    ws = settings.twilio_workspace_sid
    if not ws:
        return skipped(
            "taskrouter",
            "TWILIO_WORKSPACE_SID is not set: set it to your Flex workspace's WS… SID to "
            "check its event callback",
        )
    try:
        workspace = await twilio.fetch_workspace(ws)
    except TwilioError as error:
        return failed(
            "taskrouter",
            f"could not read workspace {mask(ws)} ({error})",
            "Set TWILIO_WORKSPACE_SID to your Flex workspace's SID (Console > TaskRouter > "
            "Workspaces), then run the doctor again.",
        )
    setting = (
        f"In Console > TaskRouter > {workspace.friendly_name or 'your Flex workspace'} > "
        f"Settings, set the Event callback URL to {url} with the events Reservation "
        "Accepted, Task Wrap-Up, Task Completed and Task Canceled (docs/flex-setup.md, "
        "section 5)."
    )
    if workspace.event_callback_url != url:
        shown = shown_url(workspace.event_callback_url) if workspace.event_callback_url else None
        return failed(
            "taskrouter",
            f"the workspace's event callback is {shown or 'not set'}, not {url}",
            f"{setting} Without it a close Flex makes silently reaches users only at the "
            "next reconcile.",
        )
    # No filter means every event; a filter must list the task events.
    listed = [e.strip() for e in (workspace.events_filter or "").split(",") if e.strip()]
    missing = [e for e in TASK_EVENTS if listed and e not in listed]
    if missing:
        return failed(
            "taskrouter",
            f"the event callback leaves out {', '.join(missing)}",
            setting,
        )
    form = {
        "EventType": "task.completed",
        "WorkspaceSid": ws,
        "TaskSid": "WT" + "0" * 32,
        "TaskAttributes": json.dumps({"conversationSid": PROBE_CONVERSATION_SID}),
    }
    try:
        status = await _signed_post(http, url, form, settings)
    except (aiohttp.ClientError, TimeoutError) as error:
        return failed(
            "taskrouter",
            f"POST {url}: {http_failure(error, seconds)}",
            "Make sure the proxy in front of the bridge forwards POST /twilio/taskrouter.",
        )
    if 200 <= status < 300:
        return passed("taskrouter", f"event callback {url}, signed POST accepted ({status})")
    return failed(
        "taskrouter",
        f"signed POST {url} answered {status}",
        "The bridge must answer TaskRouter's signed events: use the same PUBLIC_URL and "
        "TWILIO_AUTH_TOKEN for the bridge and the doctor, and let the proxy forward "
        "POST /twilio/taskrouter unchanged.",
    )


async def _signed_post(
    http: aiohttp.ClientSession, url: str, form: dict[str, str], settings: Settings
) -> int:
    """POST a form signed as Twilio signs its webhooks; the status it got."""
    signature = RequestValidator(settings.twilio_auth_token).compute_signature(url, form)
    async with http.post(
        url, data=form, headers={"X-Twilio-Signature": signature}, allow_redirects=False
    ) as response:
        await response.read()
        return response.status


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[aiohttp.ClientResponse, bytes]:
    async with http.get(url, allow_redirects=False) as response:
        return response, await response.read()


def _redirect_fix(response: aiohttp.ClientResponse, settings: Settings) -> str:
    location = response.headers.get("Location", "")
    return (
        f"{shown_url(settings.public_url)} redirects to {shown_url(location) or 'elsewhere'}: "
        "assistants and Twilio do not follow redirects for the API, so set PUBLIC_URL to the "
        "final public https address and restart the bridge."
    )


async def check_public_url(
    http: aiohttp.ClientSession, settings: Settings, seconds: float
) -> CheckResult:
    """GET PUBLIC_URL/healthz answers 200 JSON from the bridge."""
    public = shown_url(settings.public_url)
    url = f"{settings.public_url}/healthz"
    started = time.monotonic()
    try:
        response, body = await _get(http, url)
    except (aiohttp.ClientError, TimeoutError) as error:
        fix = (
            f"Start the bridge (`make run`) and make sure {public} leads to it; for a tunnel "
            f"(e.g. `ngrok http {settings.port}`) keep it running and set PUBLIC_URL to the "
            "address it prints."
        )
        if settings.public_url != settings.local_url and await _answers(http, settings.local_url):
            fix = (
                f"The bridge answers at {settings.local_url}, but {public} does not lead to "
                "it: start the tunnel or proxy in front of the bridge, or set PUBLIC_URL to "
                "the address it gives, and restart the bridge."
            )
        return failed("public_url", f"{url} unreachable: {http_failure(error, seconds)}", fix)
    elapsed = (time.monotonic() - started) * 1000
    if 300 <= response.status < 400:
        return failed(
            "public_url", f"{url} answered {response.status}", _redirect_fix(response, settings)
        )
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if response.status != 200 or not isinstance(document, dict) or document.get("status") != "ok":
        return failed(
            "public_url",
            f"{url} answered {response.status} {response.content_type}, not the bridge's health",
            f"Something other than the bridge answers at {public}: point the tunnel or proxy "
            f"at the bridge's HOST:PORT ({settings.local_url}), or correct PUBLIC_URL.",
        )
    note = ""
    if settings.public_url.startswith("http://") and not is_loopback(settings.public_url):
        note = " (plain http: GPT Actions and Twilio need https)"
    return passed("public_url", f"{public}/healthz answered 200 in {elapsed:.0f} ms{note}")


async def _answers(http: aiohttp.ClientSession, base: str) -> bool:
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        response, _ = await _get(http, f"{base}/healthz")
        return response.status == 200
    return False


def _advertised(manifest: Any, openapi: Any) -> dict[str, str]:
    """The URLs the bridge at PUBLIC_URL advertises, by where they appear."""
    found: dict[str, str] = {}
    if isinstance(manifest, dict):
        api = manifest.get("api")
        found["manifest api.url"] = str(api.get("url", "")) if isinstance(api, dict) else ""
        found["manifest logo_url"] = str(manifest.get("logo_url", ""))
        found["manifest legal_info_url"] = str(manifest.get("legal_info_url", ""))
    if isinstance(openapi, dict):
        servers = openapi.get("servers")
        first = servers[0] if isinstance(servers, list) and servers else {}
        found["openapi servers[0].url"] = (
            str(first.get("url", "")) if isinstance(first, dict) else ""
        )
    return found


async def check_manifest(
    http: aiohttp.ClientSession, settings: Settings, seconds: float
) -> tuple[CheckResult, str | None]:
    """The manifest's and the OpenAPI document's URLs are under PUBLIC_URL.

    Also returns the base URL the bridge advertises when it differs from PUBLIC_URL.
    """
    public = shown_url(settings.public_url)
    documents: list[Any] = []
    for path in ("/.well-known/ai-plugin.json", "/openapi.yaml"):
        url = f"{settings.public_url}{path}"
        try:
            response, body = await _get(http, url)
        except (aiohttp.ClientError, TimeoutError) as error:
            return failed(
                "manifest",
                f"{url}: {http_failure(error, seconds)}",
                f"Make sure the proxy in front of the bridge forwards every path under {public}.",
            ), None
        if response.status != 200:
            return failed(
                "manifest",
                f"{url} answered {response.status}",
                f"Make sure the proxy in front of the bridge forwards {path} (GET) unchanged.",
            ), None
        try:
            documents.append(json.loads(body) if path.endswith(".json") else yaml.safe_load(body))
        except (ValueError, yaml.YAMLError):
            return failed(
                "manifest",
                f"{url} is not valid {'JSON' if path.endswith('.json') else 'YAML'}",
                f"Something other than the bridge answers at {public}: point PUBLIC_URL at it.",
            ), None
    found = _advertised(*documents)
    wrong = {where: url for where, url in found.items() if not is_under(url, settings.public_url)}
    if not wrong:
        return passed("manifest", f"manifest and OpenAPI servers point at {public}"), None
    where, url = next(iter(wrong.items()))
    parts = urlsplit(url)
    advertised = f"{parts.scheme}://{parts.netloc}" if parts.scheme else None
    more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
    return failed(
        "manifest",
        f"{where} is {shown_url(url) or '(missing)'}{more}, not under {public}",
        "The bridge answering at PUBLIC_URL builds these URLs from its own PUBLIC_URL"
        f"{f' ({shown_url(advertised)})' if advertised else ''}, which differs from {public}. "
        "PUBLIC_URL must be the public https address assistants and Twilio use (e.g. the "
        "ngrok URL), the same for the bridge and the doctor; set it in .env and restart the "
        "bridge (it reads PUBLIC_URL only at start-up).",
    ), advertised


async def check_webhook(
    http: aiohttp.ClientSession, settings: Settings, seconds: float, advertised: str | None
) -> CheckResult:
    """A correctly signed event for an unknown conversation to PUBLIC_URL/twilio/events."""
    url = settings.webhook_url
    form = {
        "EventType": "onMessageAdded",
        "ConversationSid": PROBE_CONVERSATION_SID,
        "MessageSid": "IM" + "0" * 32,
        "Index": "0",
        "Author": "flex-bridge-doctor",
        "Body": "signature check",
        "Source": "API",
    }
    try:
        status = await _signed_post(http, url, form, settings)
    except (aiohttp.ClientError, TimeoutError) as error:
        return failed(
            "webhook",
            f"POST {url}: {http_failure(error, seconds)}",
            "Make sure the proxy in front of the bridge forwards POST /twilio/events.",
        )
    if 200 <= status < 300:
        return passed("webhook", f"signed POST {url} accepted ({status})")
    if status == 403:
        if advertised:
            cause = (
                f"The bridge was started with PUBLIC_URL {shown_url(advertised)} (see manifest "
                "above), so it checks signatures against that URL, not this one."
            )
        else:
            cause = (
                "The bridge checks signatures against its own PUBLIC_URL + /twilio/events with "
                "its TWILIO_AUTH_TOKEN: either it runs with a different PUBLIC_URL or token than "
                "this environment, or a proxy rewrites the scheme, host, path or query."
            )
        return failed(
            "webhook",
            f"signed POST {url} refused (403): the signature does not match",
            f"{cause} Twilio's webhooks would be refused the same way. Set PUBLIC_URL to "
            "exactly the address Twilio posts to, use the same settings for the bridge and the "
            "doctor, and restart the bridge.",
        )
    if status == 404:
        fix = "Make sure the proxy in front of the bridge forwards POST /twilio/events unchanged."
    elif 300 <= status < 400:
        fix = (
            "PUBLIC_URL redirects, and Twilio does not follow redirects for webhooks: set "
            "PUBLIC_URL to the final https address and restart the bridge."
        )
    else:
        fix = "See the bridge's log for the error, and make sure PUBLIC_URL leads to the bridge."
    return failed("webhook", f"signed POST {url} answered {status}", fix)


async def check_database(settings: Settings) -> CheckResult:
    """Open the store (migrations included) and write in a transaction that is rolled back."""
    try:
        store = await open_store(settings)
        try:
            checked = await store.check_writable()
        finally:
            await store.close()
    except StoreUnavailable as error:
        return failed("database", error.detail, error.hint)
    return passed("database", checked)
