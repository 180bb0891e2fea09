"""How a conversation reaches Flex, behind one protocol chosen at start-up.

Today's router is Studio's (:mod:`bridge.routing.studio`): a Studio webhook whose flow's
Send to Flex widget hands the conversation to Flex on its first message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from bridge.config import Settings
from bridge.conversations import TwilioConversations


@dataclass(frozen=True)
class RoutingCheck:
    """What ``doctor`` reports of the routing settings; ``fix`` when not ``ok``."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


class Router(Protocol):
    async def route(self, sid: str, *, webhooks: Sequence[str] | None) -> None:
        """Send the conversation to Flex, once. ``webhooks``: the targets the conversation
        has already (None for one created just now, which has none), so a retry after a
        failure adds nothing twice."""

    def check(self) -> RoutingCheck:
        """Whether the routing settings can work where the bridge sends its calls."""


#: Where the bridge's Twilio calls go, which decides what a placeholder setting means.
Target = Literal["sandbox", "emulator", "twilio"]


def target_of(settings: Settings) -> Target:
    if settings.twilio_api_base_url:
        return "emulator"
    return "sandbox" if settings.sandbox else "twilio"


def build_router(settings: Settings, twilio: TwilioConversations) -> Router:
    from bridge.routing.studio import StudioRouter

    return StudioRouter(twilio, settings.twilio_flow_sid, target_of(settings))
