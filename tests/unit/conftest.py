"""The core's unit tier: the real services, wired by the real builder, over a real SQLite
file, with the fake Twilio client instead of HTTP. Webhooks are handed to the inbox as
the route would hand them. The whole tier runs in seconds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.config import load_settings
from bridge.identity import for_username
from bridge.services import Services, build_services
from tests.fakes import FakeTwilio


@dataclass
class Core:
    wired: Services
    twilio: FakeTwilio

    def identity(self, username: str) -> str:
        return for_username(self.wired.secret, username)

    async def webhook_for(self, sid: str, index: int) -> bool:
        """Deliver the onMessageAdded webhook of message ``index``, as Twilio would."""
        message = self.twilio.conversations[sid].messages[index]
        return await self.wired.handoff.inbox.on_event(
            {
                "EventType": "onMessageAdded",
                "ConversationSid": sid,
                "MessageSid": message.sid,
                "Index": str(message.index),
                "Author": message.author,
                "Body": message.body,
                "DateCreated": message.date_created,
            }
        )

    async def closed_webhook(self, sid: str) -> bool:
        return await self.wired.handoff.inbox.on_event(
            {
                "EventType": "onConversationStateUpdated",
                "ConversationSid": sid,
                "StateFrom": "active",
                "StateTo": "closed",
            }
        )


def core_settings(tmp_path: Path, **overrides: str) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'core.db'}",
        "REPLY_WAIT_SECONDS": "2",
        **overrides,
    }


CoreFactory = Callable[..., AbstractAsyncContextManager[Core]]


@pytest.fixture
def make_core(tmp_path: Path) -> CoreFactory:
    """``async with make_core(SETTING="value") as core:`` a core with those settings."""

    @asynccontextmanager
    async def started(**overrides: str) -> AsyncIterator[Core]:
        twilio = FakeTwilio()
        settings = load_settings(core_settings(tmp_path, **overrides))
        async with build_services(settings, twilio=twilio) as wired:
            yield Core(wired, twilio)

    return started


@pytest.fixture
async def core(make_core: CoreFactory) -> AsyncIterator[Core]:
    async with make_core() as started:
        yield started
