"""The sentence each answer carries for the model, worded from the outcome kind and the
handoff status (where the user stands), so the model can tell the user what a person on
a support line would: in line, how long, who has it, when they open.

Each front door names its own operations: the HTTP API its operationIds (sendMessage,
getReplies, chooseNextStep), the MCP endpoint its tools.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.core.outcomes import HandoffResult, HandoffStatus, Outcome


@dataclass(frozen=True)
class Vocabulary:
    send: str  # what sends the user's message
    replies: str  # what fetches the agent's replies
    choose: str  # what records the user's choice when no agent accepted in time
    end: str = "end"  # what ends the conversation with the human
    after: str = "after"  # the parameter naming the last reply the caller showed


_NEW_ON_NEXT = "show any replies. If the user writes again, {send} starts a new conversation."
_NOTES: dict[Outcome, str] = {
    "answered": "A human agent replied: show the replies to the user as they are. Send the "
    "user's next message with {send}.",
    "waiting": "The message reached the support team but no agent has replied yet. Tell the user "
    "a human will answer, then call {replies} for this user to fetch the answer.",
    "agent_joined": "{agent} from the support team has joined the conversation and will reply "
    "here. Tell the user, then call {replies} for this user to fetch the reply.",
    "no_one_accepted": "No agent has taken the conversation yet.",
    "unavailable": "Nothing was sent to the support team.",
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
_AFTER_HOURS = "The support team is closed now{opens}."
_NO_AGENTS = "No agent of the support team is available right now."
_TAKEN = (
    " The message is with them and an agent will answer {when}: tell the user so, and call "
    "{replies} for this user when they come back to show the answer."
)
_DECLINED = " Keep helping the user yourself, and offer a human again {when} (call {send} then)."
_CHOOSE = (
    " Ask the user whether they want to keep waiting, leave a message (the team answers "
    "later; the answer is here whenever they come back), or continue with you; then call "
    "{choose} with keep_waiting, leave_message or continue_with_assistant."
)
_LEFT_MESSAGE = (
    "The user left their message with the support team; an agent will answer when one is "
    "free. Call {replies} for this user when they come back to show the answer."
)
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


def _opens(status: HandoffStatus) -> str:
    """When the team opens, on its own clock (the user's may differ: say whose it is)."""
    if not status.opens_local:
        return ""
    return f" and opens on {status.opens_local}"


def _span(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = round(seconds / 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def _wait_range(low: int, high: int) -> str:
    """``1 to 4 minutes``, ``20 to 45 seconds``, ``30 seconds to 2 minutes``."""
    if _span(low) == _span(high):
        return _span(high)
    if high < 60 or low >= 60:
        return f"{_span(low).split()[0]} to {_span(high)}"
    return f"{_span(low)} to {_span(high)}"


def _usual_wait_helps(status: HandoffStatus) -> bool:
    """The queue's usual wait is worth telling: known, and not already outwaited."""
    queue = status.queue
    if queue is None or queue.expected_wait is None:
        return False
    return status.waited_seconds is None or status.waited_seconds <= queue.expected_wait[1]


def _in_line(status: HandoffStatus) -> str:
    """The queue figures as the user would hear them, or nothing when unknown."""
    queue = status.queue
    if queue is None:
        return ""
    said = ""
    if queue.position is not None:
        place = (
            _ORDINALS[queue.position - 1]
            if queue.position <= len(_ORDINALS)
            else f"number {queue.position}"
        )
        said += f" The user is {place} in line."
    if _usual_wait_helps(status):
        assert queue.expected_wait is not None
        said += (
            " Lately an agent usually picked up within "
            f"{_wait_range(*queue.expected_wait)} in this queue."
        )
    return said


def _waiting(status: HandoffStatus) -> str:
    """Waiting for an agent: what to tell the user, from where they stand."""
    if status.choices:
        return _NOTES["no_one_accepted"] + _in_line(status) + _CHOOSE
    if status.choice == "leave_message":
        return _LEFT_MESSAGE
    if status.state == "after_hours":
        return (
            _AFTER_HOURS.format(opens=_opens(status))
            + _in_line(status)
            + _TAKEN.format(when="once they open", replies="{replies}")
        )
    if status.state == "no_agents":
        return (
            _NO_AGENTS
            + _in_line(status)
            + _TAKEN.format(when="as soon as one is free", replies="{replies}")
        )
    if status.queue is None:
        return _NOTES["waiting"]
    return (
        "The message reached the support team and is waiting for an agent."
        + _in_line(status)
        + " Tell the user, then call {replies} for this user to fetch the answer."
    )


def note(
    outcome: Outcome, words: Vocabulary, status: HandoffStatus | None = None, *, more: bool = False
) -> str:
    """The note for ``outcome``, worded from where the user stands."""
    status = status or HandoffStatus()
    if outcome == "unavailable":
        why = (
            _AFTER_HOURS.format(opens=_opens(status))
            if status.state == "after_hours"
            else _NO_AGENTS
        )
        when = "once they are open" if status.state == "after_hours" else "later"
        said = why + " " + _NOTES["unavailable"] + _DECLINED.format(when=when, send="{send}")
    elif outcome == "waiting" and status.state == "with_agent":
        said = _WAITING_WITH_AGENT
    elif outcome in ("waiting", "no_one_accepted", "queued") and status.waiting_for_agent:
        said = _waiting(status) if outcome != "queued" else _NOTES["queued"]
    else:
        said = _NOTES[outcome]
    said += _MORE if more else ""
    # The agent's name is theirs to give: "An agent" when Flex did not say it.
    return said.format(
        send=words.send,
        replies=words.replies,
        choose=words.choose,
        agent=status.agent_name or "An agent",
    )


#: Added when the user already read some replies in the live chat pane (an MCP App).
_SHOWN = (
    " The user already read the replies marked shown_in_pane in the live chat pane: do not "
    "repeat them; at most say in a few words that the agent answered there."
)


#: Added for a client that shows the live chat pane beside the tool's result.
_PANE = (
    " The user sees this conversation live in the chat pane shown with this result, the "
    "agent's replies included, and can write to the agent there: do not repeat the replies; "
    "say in a few words what happened."
)


def worded(result: HandoffResult, words: Vocabulary, *, pane: bool = False) -> dict[str, object]:
    """The answer a front door gives: the result, with its note in that door's words
    (``pane``: the client shows the live chat pane beside it)."""
    said = note(result.outcome, words, result.handoff, more=result.more)
    if pane:
        said += _PANE
    elif any(reply.shown_in_pane for reply in result.replies):
        said += _SHOWN
    return result.to_json(said)


def progress_line(status: HandoffStatus) -> str:
    """Where the user stands, in a few words for a progress notification."""
    if status.state == "with_agent":
        return f"{status.agent_name or 'An agent'} has the conversation; waiting for the reply…"
    if not status.waiting_for_agent:
        return "Waiting for a human agent to reply…"
    queue = status.queue
    parts = []
    if queue is not None and queue.position is not None:
        parts.append(f"Number {queue.position} in line")
    if status.state == "after_hours":
        parts.append("the support team is closed" + _opens(status))
    elif status.state == "no_agents":
        parts.append("no agent is available right now")
    elif queue is not None and queue.expected_wait is not None and _usual_wait_helps(status):
        parts.append(f"an agent usually picks up within {_wait_range(*queue.expected_wait)}")
    if not parts:
        return "Waiting for a human agent to reply…"
    said = "; ".join(parts)
    return said[0].upper() + said[1:] + "…"
