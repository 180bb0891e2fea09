"""The sentence each answer carries for the model, worded from the outcome kind.

Each front door names its own operations: the HTTP API its operationIds (sendMessage,
getReplies), the MCP endpoint its tools.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.core.outcomes import HandoffResult, Outcome


@dataclass(frozen=True)
class Vocabulary:
    send: str  # what sends the user's message
    replies: str  # what fetches the agent's replies


_NEW_ON_NEXT = "show any replies. If the user writes again, {send} starts a new conversation."
_NOTES: dict[Outcome, str] = {
    "answered": "A human agent replied: show the replies to the user as they are. Send the "
    "user's next message with {send}.",
    "waiting": "The message reached the support team but no agent has replied yet. Tell the user "
    "a human will answer, then call {replies} for this user to fetch the answer.",
    "agent_joined": "{agent} from the support team has joined the conversation and will reply "
    "here. Tell the user, then call {replies} for this user to fetch the reply.",
    "queued": "The message is saved and will be delivered to the support team as soon as the "
    "messaging service recovers; do not send it again. Call {replies} later for the answer.",
    "closed_by_agent": "The agent ended this conversation; " + _NEW_ON_NEXT,
    "closed_by_user": "The conversation with the human agent is ended, as the user asked; "
    + _NEW_ON_NEXT,
    "closed_by_timeout": "The conversation closed after a while without messages; " + _NEW_ON_NEXT,
    "closed_by_system": "The support team's system closed this conversation before an agent "
    "could take it (no agent was free in time); " + _NEW_ON_NEXT,
    "conversation_lost": "The conversation with the support team no longer exists on their "
    "side (it was removed), so the agent cannot see it; " + _NEW_ON_NEXT,
    "none_yet": "There is no conversation with a human for this user yet; call {send} when the "
    "user asks for one.",
}


_MORE = " More replies are waiting than fit in one answer: call {replies} now for the rest."
#: Waiting, once an agent has the conversation: no longer "no agent has replied yet".
_WAITING_WITH_AGENT = (
    "{agent} from the support team has the conversation and has not replied to the latest "
    "message yet. Tell the user, then call {replies} for this user to fetch the reply."
)


def note(
    outcome: Outcome,
    words: Vocabulary,
    *,
    more: bool = False,
    agent: str | None = None,
    with_agent: bool = False,
) -> str:
    """The note for ``outcome``; ``with_agent``: an agent has the conversation."""
    said = _WAITING_WITH_AGENT if outcome == "waiting" and with_agent else _NOTES[outcome]
    said += _MORE if more else ""
    # The agent's name is theirs to give: "An agent" when Flex did not say it.
    return said.format(send=words.send, replies=words.replies, agent=agent or "An agent")


def worded(result: HandoffResult, words: Vocabulary) -> dict[str, object]:
    """The answer a front door gives: the result, with its note in that door's words."""
    status = result.handoff
    return result.to_json(
        note(
            result.outcome,
            words,
            more=result.more,
            agent=status.agent_name,
            with_agent=status.state == "with_agent",
        )
    )
