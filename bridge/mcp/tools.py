"""The hand-off tools: what the model reads (names, descriptions, schemas) and does.

Each result is the HTTP API's ``{status, replies, note}`` as structured content, plus a
text rendering for clients that show only text. The note names these tools rather than
the HTTP operations. Input checks and limits are the core's; their refusals are worded
here as tool errors.

Waiting is capped at :data:`MAX_WAIT_SECONDS` (or REPLY_WAIT_SECONDS when shorter): many
MCP clients give a request 60 seconds, and a message may first spend up to 10 seconds
reaching Twilio. While waiting, a progress notification goes out to clients that asked
for them (a progressToken) every :data:`PROGRESS_INTERVAL_SECONDS`, and at once whenever
where the user stands changes; its message says it (position, expected wait, who has it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.apps import client_supports_apps
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field
from quart import Quart

from bridge import logs
from bridge.auth.caller import Caller
from bridge.conversations import TwilioError, TwilioUnavailable
from bridge.core.errors import (
    Busy,
    ContextTooLong,
    HandoffError,
    InvalidMessage,
    InvalidReplyId,
    MessageTooLong,
    NothingToChoose,
    RateLimited,
    TooManyWaiting,
)
from bridge.core.outcomes import HandoffResult, HandoffStatus
from bridge.core.service import MAX_CONTEXT_CHARS
from bridge.core.waiters import Progress
from bridge.identity import for_mcp_session, for_username
from bridge.mcp.caller import CALLER_SCOPE_KEY, SESSION_HEADER, session_shows_apps
from bridge.mcp.caller import wired_services as find_services
from bridge.notes import Vocabulary, progress_line, worded
from bridge.services import Services
from bridge.store import WaitingChoice as Choice
from bridge.tasks import cancel_and_wait

#: The longest a tool call waits for an agent's reply. Many MCP clients (the MCP
#: Inspector, the TypeScript and Python SDKs, several desktop apps) time a request out
#: after 60 seconds; 25 s of waiting plus up to 10 s posting the message stays well below.
MAX_WAIT_SECONDS = 25.0
PROGRESS_INTERVAL_SECONDS = 3.0

T = TypeVar("T")

#: The tools, as the notes name them.
WORDS = Vocabulary(
    send="request_human_agent",
    replies="get_agent_replies",
    choose="choose_next_step",
    end="end_human_conversation",
    after="after_id",
)

#: Who sessionless MCP requests are in the sandbox without authentication.
SESSIONLESS_SANDBOX_USER = "mcp-sandbox-user"


class ReplyOut(BaseModel):
    id: str = Field(description="The agent message's id.")
    body: str = Field(description="What the agent wrote: show it to the user as it is.")
    sent_at: str = Field(description="When the agent sent it (ISO 8601).")
    shown_in_pane: bool = Field(
        default=False,
        description="The user already read it in the live chat pane: do not repeat it.",
    )


class AgentOut(BaseModel):
    name: str = Field(description="The agent's name, as the support team gives it.")


class WaitOut(BaseModel):
    low: int = Field(description="Seconds: the short end of the usual wait.")
    high: int = Field(description="Seconds: the long end of the usual wait.")


class QueueOut(BaseModel):
    position: int | None = Field(description="Place in line (1: next). null: not known.")
    agents_available: int | None = Field(
        description="Agents of the queue set to Available now (some may be busy)."
    )
    expected_wait_seconds: WaitOut | None = Field(
        description="How long the queue's users usually waited for an agent lately; null "
        "without enough history (never guess)."
    )


class HandoffStatusOut(BaseModel):
    state: (
        Literal["queued", "with_agent", "wrapping_up", "closed", "after_hours", "no_agents"] | None
    ) = Field(
        description="queued: waiting for an agent. with_agent: an agent took it. wrapping_up: "
        "the agent ended the chat. closed: it ended. after_hours: the support team is closed "
        "(see opens_at). no_agents: nobody is available now. null: not known (never guess)."
    )
    agent: AgentOut | None = Field(description="The agent who took the conversation.")
    queue: QueueOut | None = Field(description="Place in the queue, when known.")
    closed_by: Literal["agent", "user", "timeout", "system", "lost"] | None = Field(
        description="Who ended it, when closed."
    )
    opens_at: str | None = Field(description="When the support team opens again (ISO 8601).")
    choices: list[Choice] | None = Field(
        description="Set when no agent accepted in time: ask the user, then call "
        "choose_next_step with one of these."
    )
    choice: Choice | None = Field(description="What the user chose while waiting, if anything.")


class HandoffOut(BaseModel):
    status: Literal["answered", "waiting", "closed", "unavailable"] = Field(
        description="answered: replies are here. waiting: no reply yet. closed: the "
        "conversation with the human ended. unavailable: the support team is closed or "
        "nobody is available, and nothing was sent (keep helping the user)."
    )
    replies: list[ReplyOut] = Field(description="Agent replies not shown before, oldest first.")
    note: str = Field(description="What to do next.")
    closed_by: Literal["agent", "user", "timeout", "system", "lost"] | None = Field(
        default=None,
        description="Only when closed: who ended it (agent; user; timeout: inactive too "
        "long; system: no agent took it in time; lost: it no longer exists).",
    )
    handoff: HandoffStatusOut = Field(description="Where the user stands with the support team.")


HandoffToolResult = Annotated[CallToolResult, HandoffOut]


def render(result: HandoffResult, *, pane: bool = False) -> CallToolResult:
    """The tool result; ``pane``: the client shows the live chat pane beside it."""
    data = worded(result, WORDS, pane=pane)
    lines = [f"Status: {result.status}"]
    if result.replies:
        lines.append("Replies from the human agent:")
        lines += [f"- {reply.body}" for reply in result.replies]
    lines.append(f"Note: {data['note']}")
    return CallToolResult(
        content=[TextContent(type="text", text="\n".join(lines))], structured_content=data
    )


class Handoff:
    """The tool handlers, reaching the bridge's services through its Quart app."""

    def __init__(self, bridge: Quart) -> None:
        self.bridge = bridge

    def services(self) -> Services:
        wired = find_services(self.bridge)
        if wired is None:
            raise ToolError("The service is starting or stopping; try again in a moment.")
        return wired

    def caller(self, ctx: Context[Any, Any], wired: Services) -> tuple[str, str | None]:
        """The user's identity and verified profile, noted for the tool call's log lines."""
        identity, profile = self._identify(ctx, wired)
        logs.request_id.set(logs.new_request_id())
        logs.identity.set(identity)
        logs.conversation_sid.set(None)
        return identity, profile

    def _identify(self, ctx: Context[Any, Any], wired: Services) -> tuple[str, str | None]:
        """The user's identity and (when shared with agents) verified profile."""
        request = ctx.request_context.request
        scope: dict[str, Any] = getattr(request, "scope", {})
        caller = scope.get(CALLER_SCOPE_KEY)
        if not isinstance(caller, Caller):
            raise ToolError("This server only serves tools over its HTTP endpoint, /mcp.")
        if caller.identity is not None:
            return caller.identity, caller.profile
        session_id = request.headers.get(SESSION_HEADER) if request is not None else None
        if not session_id and wired.settings.auth.mode == "none" and wired.settings.sandbox:
            # The newest protocol has no sessions. In the sandbox, where identity is not
            # trusted anyway, such clients share one user rather than failing.
            return for_username(wired.secret, SESSIONLESS_SANDBOX_USER), None
        if not session_id:
            raise ToolError(
                "This server tells users apart by MCP session, and this request has none "
                "(Mcp-Session-Id). Connect with a protocol version that uses sessions "
                "(2025-06-18 or earlier), or ask the operator to enable OAuth sign-in."
            )
        return for_mcp_session(wired.secret, session_id), None

    def _wait_cap(self, wired: Services) -> float:
        return min(wired.settings.reply_wait_seconds, MAX_WAIT_SECONDS)

    async def request_human_agent(
        self,
        message: Annotated[
            str,
            Field(
                description="The user's message for the human agent, in the user's own "
                "words. Write it as the user would; the agent reads it as is."
            ),
        ],
        ctx: Context[Any, Any],
        context: Annotated[
            str | None,
            Field(
                description="Optional, first message only: a short summary (at most "
                f"{MAX_CONTEXT_CHARS} characters) of what the user needs and what was tried, "
                "shown to the agent before the message. Ignored on later messages."
            ),
        ] = None,
    ) -> HandoffToolResult:
        wired = self.services()
        identity, profile = self.caller(ctx, wired)
        reporter = _Progress(ctx, self._wait_cap(wired))
        result = await as_tool_errors(
            reporter.during(
                wired.handoff.send(
                    identity,
                    message,
                    context,
                    profile=profile,
                    wait_seconds=self._wait_cap(wired),
                    progress=reporter.heard,
                )
            )
        )
        return await _delivered(ctx, wired, result)

    async def get_agent_replies(
        self,
        ctx: Context[Any, Any],
        wait_seconds: Annotated[
            float | None,
            Field(
                ge=0,
                description="How long to wait for a reply when none is there yet, in "
                f"seconds (at most {MAX_WAIT_SECONDS:g}; the default waits that long). "
                "Use 0 to look without waiting.",
            ),
        ] = None,
        after_id: Annotated[
            str | None,
            Field(
                pattern=r"^(IM[0-9a-fA-F]{32}|none)$",
                description="The id of the last agent reply you showed the user, or 'none' "
                "when you have shown none in this conversation yet. Every reply after it is "
                "then returned, including one whose earlier result never reached you.",
            ),
        ] = None,
    ) -> HandoffToolResult:
        wired = self.services()
        identity, _profile = self.caller(ctx, wired)
        cap = self._wait_cap(wired)
        wait = cap if wait_seconds is None else min(wait_seconds, cap)
        reporter = _Progress(ctx, wait)
        result = await as_tool_errors(
            reporter.during(
                wired.handoff.replies(identity, wait, after_id, progress=reporter.heard)
            )
        )
        return await _delivered(ctx, wired, result)

    async def end_human_conversation(self, ctx: Context[Any, Any]) -> HandoffToolResult:
        wired = self.services()
        identity, _profile = self.caller(ctx, wired)
        return await _delivered(ctx, wired, await as_tool_errors(wired.handoff.end(identity)))

    async def choose_next_step(
        self,
        choice: Annotated[
            Choice,
            Field(
                description="What the user wants now that no agent has taken the "
                "conversation: keep_waiting, leave_message (the team answers later), or "
                "continue_with_assistant (the request to the team is withdrawn)."
            ),
        ],
        ctx: Context[Any, Any],
    ) -> HandoffToolResult:
        wired = self.services()
        identity, _profile = self.caller(ctx, wired)
        result = await as_tool_errors(wired.handoff.choose(identity, choice))
        return await _delivered(ctx, wired, result)


async def _delivered(
    ctx: Context[Any, Any], wired: Services, result: HandoffResult
) -> CallToolResult:
    """The result, its replies counted as delivered: the SDK sends it once the tool
    returns, and a caller that cancels first never gets here (the lease then runs out
    and the replies are handed out again)."""
    await wired.handoff.confirm(result)
    request = ctx.request_context.request
    session = request.headers.get(SESSION_HEADER) if request is not None else None
    return render(result, pane=client_supports_apps(ctx) or session_shows_apps(session))


async def as_tool_errors(work: Awaitable[T]) -> T:
    """The core's refusals and Twilio's failures, as tool errors the model can act on."""
    try:
        return await work
    except HandoffError as error:
        raise ToolError(_refusal(error)) from None
    except TwilioUnavailable:
        raise ToolError(
            "The support team's messaging service is not answering right now; try again in "
            "a few seconds."
        ) from None
    except TwilioError:
        raise ToolError(
            "The support team's messaging service refused the request; the service's "
            "settings need checking. Tell the user a human cannot be reached right now."
        ) from None


def _refusal(error: HandoffError) -> str:
    if isinstance(error, RateLimited):
        return (
            "Too many messages for this user: wait "
            f"{error.retry_after} seconds before sending the next one."
        )
    if isinstance(error, InvalidMessage):
        return "'message' must not be empty: pass the user's message."
    if isinstance(error, MessageTooLong):
        return (
            f"'message' has {error.length} characters; the limit is {error.limit}. Shorten it "
            "or send it in several messages."
        )
    if isinstance(error, InvalidReplyId):
        return "'shown_through' must be the id of an agent reply (IM and 32 hex digits)."
    if isinstance(error, ContextTooLong):
        return f"'context' must be at most {error.limit} characters: summarise it."
    if isinstance(error, TooManyWaiting):
        return (
            "This user already has several calls waiting for the agent's reply; wait for "
            f"them, or try again in {error.retry_after} seconds."
        )
    if isinstance(error, NothingToChoose):
        return (
            "This user has no conversation waiting for an agent (none yet, an agent has it, "
            "or it ended): there is nothing to choose. Call get_agent_replies to see where "
            "it stands."
        )
    if isinstance(error, Busy):
        return (
            "The support line is taking many new conversations right now: tell the user, "
            f"and try again in {error.retry_after} seconds."
        )
    return f"The request was refused: {error}."


class _Progress:
    """Progress notifications while a tool waits (no-ops without a progressToken): every
    few seconds, and at once when where the user stands changes, its message saying it."""

    def __init__(self, ctx: Context[Any, Any], total: float) -> None:
        self._ctx = ctx
        self._total = total
        self._message = progress_line(HandoffStatus())
        self._started = asyncio.get_running_loop().time()
        self._sent = -1.0
        meta: Any = ctx.request_context.meta or {}
        #: Where the user stands is followed only for a client that asked for progress
        #: (a waiter hearing it wakes at every refresh of the queue's figures).
        self.heard: Progress | None = (
            self._heard if meta.get("progressToken", meta.get("progress_token")) else None
        )

    async def _heard(self, status: HandoffStatus) -> None:
        message = progress_line(status)
        if message != self._message:
            self._message = message
            await self._report()

    async def _report(self) -> None:
        elapsed = asyncio.get_running_loop().time() - self._started
        # Each notification's progress must be above the last one's (MCP's rule).
        value = max(min(elapsed, self._total), self._sent + 0.001)
        self._sent = value
        await self._ctx.report_progress(value, self._total, self._message)

    async def during(self, work: Awaitable[T]) -> T:
        """Await ``work``, reporting every PROGRESS_INTERVAL_SECONDS meanwhile."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=PROGRESS_INTERVAL_SECONDS)
                if done:
                    return task.result()
                await self._report()
        finally:
            if not task.done():
                await cancel_and_wait([task])


DESCRIPTIONS = {
    "request_human_agent": (
        "Send the user's message to a human support agent, starting a conversation with "
        "the support team if there is none. Call it when the user asks for a human, or "
        "for something only a person can do, and for every later message while the user "
        "talks to the agent. Waits up to about 25 seconds for the agent's reply. Returns "
        "status 'answered' with the agent's replies (show them to the user as they are), "
        "'waiting' when no agent has replied yet (tell the user a human will answer, then "
        "call get_agent_replies), or 'closed'. Follow the returned note."
    ),
    "get_agent_replies": (
        "Fetch the human agent's replies to the user that were not shown yet, waiting up "
        "to wait_seconds for one to arrive. Call it after request_human_agent answered "
        "'waiting', or whenever the user asks whether the agent replied. Each reply is "
        "returned once. Status 'closed' means the conversation ended; the note says who ended "
        "it."
    ),
    "end_human_conversation": (
        "End the user's conversation with the human agent, when the user says they are "
        "done with the human or wants to go back to the assistant. Returns any last "
        "replies. A later request_human_agent starts a new conversation."
    ),
    "choose_next_step": (
        "Record what the user wants when no agent has taken the conversation in time (the "
        "result's handoff.choices is set and its note asks): keep_waiting, leave_message "
        "(the team answers later; fetch it with get_agent_replies when the user is back), or "
        "continue_with_assistant (withdraws the request; Flex cancels it)."
    ),
}


def register_tools(server: MCPServer[Any], handoff: Handoff, meta: dict[str, Any]) -> None:
    """The model's tools; request_human_agent carries ``meta`` (what links it to the live
    chat pane): one pane per exchange the model starts, not one per tool call (hosts keep
    every pane on screen, each following the conversation)."""
    server.add_tool(
        handoff.request_human_agent,
        name="request_human_agent",
        title="Talk to a human agent",
        description=DESCRIPTIONS["request_human_agent"],
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, open_world_hint=True
        ),
        meta=meta,
    )
    server.add_tool(
        handoff.get_agent_replies,
        name="get_agent_replies",
        title="Get the human agent's replies",
        description=DESCRIPTIONS["get_agent_replies"],
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True),
    )
    server.add_tool(
        handoff.end_human_conversation,
        name="end_human_conversation",
        title="End the conversation with the human agent",
        description=DESCRIPTIONS["end_human_conversation"],
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True
        ),
    )
    server.add_tool(
        handoff.choose_next_step,
        name="choose_next_step",
        title="Choose what happens while no agent has answered",
        description=DESCRIPTIONS["choose_next_step"],
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, open_world_hint=True
        ),
    )
