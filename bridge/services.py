"""Wiring: one async builder makes every service from validated settings, and closes them.

The Quart app runs it at start-up (inside the running loop, where the HTTP session and
the database bind), the MCP endpoint and the routes use what it made, ``doctor`` uses
its parts, and tests build the core with a fake Twilio client through it.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from bridge.auth.caller import CallerCheck
from bridge.auth.server import AuthorizationServer
from bridge.config import Settings
from bridge.conversations import ConversationsClient, TwilioClient
from bridge.coordination import Coordination
from bridge.coordination.local import local_coordination
from bridge.core.handout import Handout
from bridge.core.inbox import Inbox
from bridge.core.live_chat import LiveChat
from bridge.core.opening import ConversationOpener
from bridge.core.outbox import Outbox
from bridge.core.poller import Poller, PollPace
from bridge.core.queue_watch import QueueWatch
from bridge.core.reconciler import Reconciler
from bridge.core.service import HandoffService, Limits
from bridge.core.standing import Standing, WaitPolicy
from bridge.core.waiters import Waiters
from bridge.metrics import Metrics
from bridge.routing import Router, build_router
from bridge.store import Store
from bridge.stores import Backend, open_store
from bridge.stores.base import process_name


@dataclass
class Services:
    settings: Settings
    store: Backend
    twilio: TwilioClient
    coordination: Coordination
    router: Router
    handoff: HandoffService
    metrics: Metrics
    secret: str
    callers: CallerCheck
    oauth: AuthorizationServer | None = None
    #: When /readyz last asked Twilio, and what was wrong then (None: nothing).
    twilio_readiness: tuple[float, str | None] = (float("-inf"), None)


def connect_twilio(settings: Settings, metrics: Metrics | None = None) -> ConversationsClient:
    """The Twilio client the settings name (Twilio, an emulator, or the sandbox)."""
    return ConversationsClient(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        settings.twilio_base_url,
        settings.twilio_timeout_seconds,
        observe=metrics.twilio_call if metrics is not None else None,
        flex_base_url=settings.flex_base_url,
        taskrouter_base_url=settings.taskrouter_base_url,
        studio_base_url=settings.studio_base_url,
    )


def build_handoff(
    settings: Settings,
    store: Store,
    twilio: TwilioClient,
    coordination: Coordination,
    router: Router,
    metrics: Metrics,
) -> HandoffService:
    """The core, its parts made here and handed in."""
    webhook_url = settings.webhook_url if settings.webhooks else None
    inbox = Inbox(store, twilio, coordination.wakeups, metrics, router)
    opener = ConversationOpener(store, twilio, router, webhook_url=webhook_url, metrics=metrics)
    outbox = Outbox(
        store,
        twilio,
        opener,
        inbox,
        coordination.locks,
        coordination.jobs,
        metrics,
        coordination.wakeups,
    )
    # Without webhooks, conversations someone waits on are polled; with them, only
    # reconciled now and then in case a webhook went missing.
    poller = None
    if webhook_url is None:
        pace = PollPace(
            fastest=settings.poll_interval_seconds,
            slowest=settings.poll_max_interval_seconds,
            state_every=settings.poll_state_seconds,
            calls_per_minute=settings.poll_calls_per_minute,
        )
        poller = Poller(inbox.read_messages, inbox.read_state, coordination.rate_limits, pace)
    handout = Handout(store, coordination.wakeups, metrics)
    # Queue figures need Flex's workspace; without it every queue field stays unknown.
    queue = (
        QueueWatch(
            twilio,
            settings.twilio_workspace_sid,
            coordination.jobs,
            coordination.board,
            refresh_seconds=settings.queue_refresh_seconds,
            remember=store.set_task_sid,
            open_tasks=store.open_task_sids,
        )
        if settings.twilio_workspace_sid
        else None
    )
    standing = Standing(
        queue,
        WaitPolicy(
            settings.business_hours,
            settings.assignment_timeout_seconds,
            settings.unavailable_policy,
        ),
    )
    waiters = Waiters(
        store,
        coordination.wakeups,
        handout,
        metrics,
        poller,
        standing,
        max_per_user=settings.max_waiting_per_user,
        max_total=settings.max_waiting_calls,
    )
    reconciler = Reconciler(
        store,
        inbox,
        coordination.jobs,
        waited_on=waiters.waited_on,
        interval_seconds=settings.reconcile_interval_seconds,
        periodic=poller is None,
    )
    return HandoffService(
        store,
        twilio,
        coordination,
        inbox=inbox,
        outbox=outbox,
        handout=handout,
        waiters=waiters,
        reconciler=reconciler,
        poller=poller,
        standing=standing,
        live_chat=LiveChat(store, coordination.wakeups, waiters, standing),
        router=router,
        limits=Limits(
            max_message_chars=settings.max_message_chars,
            reply_wait_seconds=settings.reply_wait_seconds,
            messages_per_minute=settings.auth.rate_limit_per_minute,
            new_conversations_per_minute=settings.new_conversations_per_minute,
        ),
    )


@asynccontextmanager
async def build_services(
    settings: Settings, *, twilio: TwilioClient | None = None
) -> AsyncIterator[Services]:
    """Every service, started; all closed on exit (the core first, the store last).

    ``twilio`` replaces the client the settings name (a fake, in the core's unit tests).
    """
    async with AsyncExitStack() as stack:
        metrics = Metrics()
        name = process_name()  # how the database tells this process's changes from others'
        store = await open_store(settings, name=name)
        stack.push_async_callback(store.close)
        secret = settings.bridge_secret or await store.get_or_create_setting(
            "bridge_secret", secrets.token_urlsafe(32)
        )
        if twilio is None:
            twilio = connect_twilio(settings, metrics)
            stack.push_async_callback(twilio.close)
        if settings.postgres_url is not None:
            # Every process on the database as one: wake-ups, locks, jobs, rate limits.
            from bridge.coordination.postgres import postgres_coordination

            coordination = await stack.enter_async_context(
                postgres_coordination(
                    settings.postgres_url,
                    name=name,
                    observe_lag=metrics.wake_delivery_seconds.observe,
                )
            )
        else:
            coordination = local_coordination()
        router = build_router(settings, twilio)
        handoff = build_handoff(settings, store, twilio, coordination, router, metrics)
        await handoff.start()
        stack.push_async_callback(handoff.close)
        oauth = (
            AuthorizationServer(store, settings.auth, settings.public_url, coordination.rate_limits)
            if settings.auth.mode == "oauth"
            else None
        )
        yield Services(
            settings=settings,
            store=store,
            twilio=twilio,
            coordination=coordination,
            router=router,
            handoff=handoff,
            metrics=metrics,
            secret=secret,
            callers=CallerCheck(settings.auth, secret, settings.public_url, oauth),
            oauth=oauth,
        )
