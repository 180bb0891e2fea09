"""The checks every front door's input passes, once, in the core."""

from __future__ import annotations

import math

from bridge.core.errors import (
    ContextTooLong,
    InvalidChoice,
    InvalidContext,
    InvalidMessage,
    InvalidWait,
    MessageTooLong,
)
from bridge.store import WAITING_CHOICES, WaitingChoice


def _storable(text: str) -> str | None:
    """``text`` without NUL characters (dropped: Twilio and databases refuse them), or None
    when it is not Unicode at all (a lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return text.replace("\x00", "")


def checked_message(text: object, limit: int) -> str:
    """The user's message, if it is one: text with something besides white space (and
    NUL characters, which are dropped)."""
    cleaned = _storable(text) if isinstance(text, str) else None
    if cleaned is None or not cleaned.strip():
        raise InvalidMessage("the message must be a non-empty string")
    if len(cleaned) > limit:
        raise MessageTooLong(len(cleaned), limit)
    return cleaned


def checked_context(context: object, limit: int) -> str | None:
    """The assistant's summary, trimmed; None when absent or blank."""
    if context is None:
        return None
    cleaned = _storable(context) if isinstance(context, str) else None
    if cleaned is None:
        raise InvalidContext("the context must be a string when given")
    if len(cleaned) > limit:
        raise ContextTooLong(len(cleaned), limit)
    return cleaned.strip() or None


def checked_choice(choice: object) -> WaitingChoice:
    for known in WAITING_CHOICES:
        if choice == known:
            return known
    raise InvalidChoice("the choice must be one of " + ", ".join(WAITING_CHOICES))


def checked_wait(wait: float) -> float:
    if not 0 <= wait < math.inf:  # NaN fails too
        raise InvalidWait("the wait must be a number of seconds, 0 or more")
    return wait
