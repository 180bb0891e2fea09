"""The live chat pane: an MCP App (the ``io.modelcontextprotocol/ui`` extension).

The hand-off tools name a ``ui://`` resource, a small self-contained page that hosts
supporting the extension (ChatGPT, Claude, VS Code…) show inside the conversation. The
page talks only to its host, which proxies two tools only it may call: one returns the
conversation as it stands, waiting for it to change; one sends what the user writes in
the pane. Both act as the user of the MCP session the host connected with, through the
same core as the model's tools. Hosts without the extension ignore all of it and show
the tools' text.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace
from importlib import resources
from typing import Annotated, Any, Literal

from mcp.server.apps import Apps, ResourceCsp
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from bridge.core.live_chat import ChatView
from bridge.mcp.tools import MAX_WAIT_SECONDS, Handoff, HandoffStatusOut, as_tool_errors

RESOURCE_URI = "ui://flex-bridge/live-chat.html"


def tool_meta() -> dict[str, Any]:
    """What links a model-facing tool to the pane: the extension's key, its older flat
    form, and the name ChatGPT's Apps SDK used before it (all the same resource)."""
    return {
        "ui": {"resourceUri": RESOURCE_URI},
        "ui/resourceUri": RESOURCE_URI,
        "openai/outputTemplate": RESOURCE_URI,
    }


def pane_html() -> str:
    """The page, with a Content-Security-Policy of its own that lets only its own inline
    script and style run (by hash), whatever the host's policy adds: nothing the page is
    given can become code, and it can reach nothing but its host."""
    page = resources.files("bridge.mcp").joinpath("static/live-chat.html").read_text("utf-8")

    def hashes(tag: str) -> str:
        found = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.DOTALL)
        return " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
            for body in found
        )

    policy = (
        f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
        "img-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'"
    )
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
    charset = '<meta charset="utf-8">'
    if charset not in page or "'sha256-" not in policy:
        raise RuntimeError("live-chat.html must have <meta charset> and bare <script>/<style>")
    return page.replace(charset, f"{charset}\n{meta}", 1)


class ChatLineOut(BaseModel):
    id: str = Field(description="The line's id (an agent reply's is its message id).")
    author: Literal["user", "agent"]
    body: str = Field(description="The text, as written (render it as text).")
    at: str = Field(description="When it was written or sent (ISO 8601).")
    state: Literal["sent", "sending", "not_delivered"] = Field(
        description="For the user's messages: sent, on the way, or refused."
    )


class ChatViewOut(BaseModel):
    conversation: int = Field(description="The user's conversation number; 0: none yet.")
    lines: list[ChatLineOut] = Field(description="The conversation's newest lines, in order.")
    earlier: int = Field(description="Older lines left out.")
    handoff: HandoffStatusOut = Field(description="Where the user stands.")
    version: str = Field(description="Pass it back as seen_version to wait for a change.")


ChatViewResult = Annotated[CallToolResult, ChatViewOut]


def _rendered(view: ChatView) -> CallToolResult:
    text = f"{len(view.lines)} lines; state {view.handoff.state}; version {view.version}"
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=view.to_json()
    )


class LiveChatTools:
    """The pane's two tools, acting as the MCP session's user."""

    def __init__(self, handoff: Handoff) -> None:
        self._handoff = handoff

    async def live_chat_view(
        self,
        ctx: Context[Any, Any],
        seen_version: Annotated[
            str | None,
            Field(max_length=64, description="The version the pane shows: wait for a change."),
        ] = None,
        shown_through: Annotated[
            str | None,
            Field(
                pattern=r"^IM[0-9a-fA-F]{32}$",
                description="The last agent reply the user saw in the pane.",
            ),
        ] = None,
        wait_seconds: Annotated[
            float,
            Field(ge=0, le=MAX_WAIT_SECONDS, description="How long to wait for a change."),
        ] = 0,
    ) -> ChatViewResult:
        wired = self._handoff.services()
        identity, _profile = self._handoff.caller(ctx, wired)
        wait = min(wait_seconds, wired.settings.reply_wait_seconds)
        view = await as_tool_errors(
            wired.handoff.live_chat.view(
                identity, seen=seen_version, shown_through=shown_through, wait=wait
            )
        )
        return _rendered(view)

    async def live_chat_send(
        self,
        message: Annotated[str, Field(description="What the user wrote in the pane.")],
        ctx: Context[Any, Any],
    ) -> ChatViewResult:
        wired = self._handoff.services()
        identity, profile = self._handoff.caller(ctx, wired)
        declined = await as_tool_errors(wired.handoff.post(identity, message, profile=profile))
        view = await wired.handoff.live_chat.view(identity)
        if declined is not None:
            why = (
                "the support team is closed now"
                if declined.state == "after_hours"
                else "no agent is available right now"
            )
            opens = f" (it opens {declined.opens_at})" if declined.opens_at else ""
            return CallToolResult(
                content=[TextContent(type="text", text=f"Not sent: {why}{opens}.")],
                structured_content=replace(view, handoff=declined).to_json(),
                is_error=True,
            )
        return _rendered(view)


def live_chat_app(handoff: Handoff) -> Apps:
    """The extension: the page as a ``ui://`` resource, and the pane's tools (for the
    pane only: hosts keep them from the model)."""
    apps = Apps()
    tools = LiveChatTools(handoff)
    apps.tool(
        resource_uri=RESOURCE_URI,
        visibility=["app"],
        name="live_chat_view",
        title="Live chat: the conversation",
        description=(
            "For the live chat pane only (assistants: use get_agent_replies). The user's "
            "whole conversation with the support team, waiting up to wait_seconds for it "
            "to change from seen_version."
        ),
        annotations=ToolAnnotations(read_only_hint=False, open_world_hint=True),
    )(tools.live_chat_view)
    apps.tool(
        resource_uri=RESOURCE_URI,
        visibility=["app"],
        name="live_chat_send",
        title="Live chat: send",
        description=(
            "For the live chat pane only (assistants: use request_human_agent). Sends what "
            "the user wrote in the pane to the agent."
        ),
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, open_world_hint=True
        ),
    )(tools.live_chat_send)
    apps.add_html_resource(
        RESOURCE_URI,
        pane_html(),
        name="live-chat",
        title="Live chat with the support team",
        description="The conversation with the human agent, live, with a box to write to them.",
        csp=ResourceCsp(connect_domains=[], resource_domains=[]),
        prefers_border=True,
    )
    return apps
