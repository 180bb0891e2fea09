"""The sandbox: a local stand-in for Twilio, served under ``/sandbox/``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from quart import Quart, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from bridge.errors import NOT_FOUND
from bridge.sandbox.console import console
from bridge.sandbox.control import control
from bridge.sandbox.conversations.api import API_PREFIX, api
from bridge.sandbox.conversations.state import Account
from bridge.sandbox.conversations.webhooks import WebhookDispatcher
from bridge.sandbox.faults import Faults, Stats
from bridge.sandbox.flex.api import API_PREFIX as FLEX_PREFIX
from bridge.sandbox.flex.api import api as flex_api
from bridge.sandbox.flex.state import Flex
from bridge.sandbox.idp import IdentityProvider, IdpClient, idp
from bridge.sandbox.mcp_host import mcp_host
from bridge.sandbox.outbound import WebhookTargets
from bridge.sandbox.shared.clock import now
from bridge.sandbox.shared.delivery import SignedDelivery
from bridge.sandbox.shared.errors import EmulatorError, twilio_error
from bridge.sandbox.studio.api import API_PREFIX as STUDIO_PREFIX
from bridge.sandbox.studio.api import api as studio_api
from bridge.sandbox.studio.state import Studio
from bridge.sandbox.taskrouter.api import API_PREFIX as TASKROUTER_PREFIX
from bridge.sandbox.taskrouter.api import api as taskrouter_api
from bridge.sandbox.taskrouter.callbacks import EventCallbacks
from bridge.sandbox.taskrouter.state import Workspace

log = logging.getLogger(__name__)

_HTTP_CODES = {400: 20001, 401: 20003, 403: 20403, 404: 20404, 405: 20004, 413: 20413}


def create_sandbox_app(
    account_sid: str,
    auth_token: str,
    *,
    idp_clients: dict[str, IdpClient] | None = None,
    webhook_targets: WebhookTargets | None = None,
    workspace_sid: str | None = None,
    workflow_sid: str | None = None,
    event_callback_url: str | None = None,
    flow_sid: str | None = None,
    hours: Callable[[], dict[str, Any]] | None = None,
) -> Quart:
    """The emulator, its controls, the agent console and the development OpenID Connect
    provider (``/sandbox/idp``), as an ASGI app of its own.

    ``idp_clients`` are the provider's registered clients, by client_id. By default it knows
    one, :data:`bridge.sandbox.idp.DEV_CLIENT`: ``flex-bridge-dev`` with the secret
    ``flex-bridge-dev-secret``, whose redirect URI is ``/oauth/callback`` on
    ``http://127.0.0.1``, ``http://localhost`` or ``http://[::1]`` at any port (an explicit
    loopback rule, so the embedded sandbox works whatever port the bridge listens on). The
    provider (:class:`bridge.sandbox.idp.IdentityProvider`) is ``app.config["SANDBOX_IDP"]``;
    more clients can be added with its ``register_client``.

    ``webhook_targets`` says where conversation webhooks may point (by default: loopback
    URLs); any other Configuration.Url is refused.

    ``workspace_sid`` and ``workflow_sid`` fix the TaskRouter workspace's SIDs (random by
    default); ``event_callback_url`` is its EventCallbackUrl from the start, as an operator
    sets it once in the Console. ``flow_sid`` fixes the SID of Studio's published flow that
    sends conversations to Flex.

    ``hours`` says whether the support team is open now (``{"open": …, "opens_at": …}``),
    for the agent desktop to show beside the queue; None: no hours are kept.
    """
    app = Quart(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config.update(
        SANDBOX_ACCOUNT_SID=account_sid,
        SANDBOX_AUTH_TOKEN=auth_token,
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    app.config["SANDBOX_FAULTS"] = Faults()
    app.config["SANDBOX_STATS"] = Stats.empty()
    app.config["SANDBOX_IDP"] = IdentityProvider(idp_clients)
    app.config["SANDBOX_HOURS"] = hours
    app.config["SANDBOX_WEBHOOK_TARGETS"] = webhook_targets or WebhookTargets(loopback=True)
    app.register_blueprint(api)
    app.register_blueprint(taskrouter_api)
    app.register_blueprint(flex_api)
    app.register_blueprint(studio_api)
    app.register_blueprint(control)
    app.register_blueprint(console)
    app.register_blueprint(mcp_host)
    app.register_blueprint(idp)

    @app.before_serving
    async def start() -> None:
        # Created here, inside the running loop, so its asyncio primitives belong to it.
        account = Account(account_sid, index_gap=app.config["SANDBOX_FAULTS"].index_gap)
        delivery = SignedDelivery(
            auth_token, app.config["SANDBOX_FAULTS"], app.config["SANDBOX_STATS"]
        )
        await delivery.start()
        workspace = Workspace(
            account_sid,
            sid=workspace_sid,
            workflow_sid=workflow_sid,
            event_callback_url=event_callback_url,
        )
        EventCallbacks(workspace, delivery)
        faults: Faults = app.config["SANDBOX_FAULTS"]
        flex = Flex(account, workspace, silent_close=lambda: Faults.chance(faults.silent_closes))
        # A Studio webhook runs its flow: Send to Flex makes an Interaction, a task.
        studio = Studio(flex, flow_sid)
        WebhookDispatcher(account, delivery, studio=studio.run)
        app.config["SANDBOX_FLEX"] = flex
        app.config["SANDBOX_STUDIO"] = studio
        app.config["SANDBOX_ACCOUNT"] = account
        app.config["SANDBOX_WORKSPACE"] = workspace
        app.config["SANDBOX_WEBHOOKS"] = delivery
        app.config["SANDBOX_TIMERS"] = asyncio.get_running_loop().create_task(
            _run_timers(account, workspace)
        )

    @app.after_serving
    async def stop() -> None:
        timers: asyncio.Task[None] = app.config.pop("SANDBOX_TIMERS")
        timers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timers
        await app.config["SANDBOX_WEBHOOKS"].close()

    @app.errorhandler(EmulatorError)
    async def emulator_error(error: EmulatorError) -> Response:
        return twilio_error(error.status, error.code, error.message)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        if request.path.startswith(
            (API_PREFIX, TASKROUTER_PREFIX, FLEX_PREFIX, STUDIO_PREFIX, "/sandbox/control")
        ):
            path = request.path
            for prefix in (API_PREFIX, TASKROUTER_PREFIX, FLEX_PREFIX, STUDIO_PREFIX):
                path = path.removeprefix(prefix)
            message = (
                f"The requested resource {path} was not found"
                if status == 404
                else (error.description or error.name)
            )
            return twilio_error(status, _HTTP_CODES.get(status, 20000 + status), message)
        response = jsonify(
            {
                "error": {
                    "code": error.name.lower().replace(" ", "_"),
                    "message": NOT_FOUND if status == 404 else (error.description or error.name),
                }
            }
        )
        response.status_code = status
        return response

    return app


async def _run_timers(account: Account, workspace: Workspace) -> None:
    while True:
        await asyncio.sleep(1.0)
        try:
            account.run_timers(now())
            workspace.run_timers(now())
        except Exception:  # a bug in one sweep must not stop the timers for good
            log.exception("sandbox timer sweep failed")
