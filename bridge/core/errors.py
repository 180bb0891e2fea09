"""What a caller did wrong, as the core sees it: each front door words these its own way
(a JSON error for the HTTP API, a tool error for MCP)."""

from __future__ import annotations


class HandoffError(Exception):
    """Input the core refuses; nothing was stored or sent."""


class InvalidUsername(HandoffError):
    """Not 1 to 128 characters of letters, digits and . _ @ + -."""


class InvalidMessage(HandoffError):
    """Not a string, or nothing but white space."""


class TooLong(HandoffError):
    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"{length} characters, limit {limit}")
        self.length = length
        self.limit = limit


class MessageTooLong(TooLong):
    """Longer than MAX_MESSAGE_CHARS."""


class InvalidContext(HandoffError):
    """Given, but not a string."""


class ContextTooLong(TooLong):
    """Longer than the core's context limit."""


class InvalidWait(HandoffError):
    """Not a finite number of seconds, 0 or more."""


class InvalidReplyId(HandoffError):
    """Not the id of an agent reply (a Twilio message SID)."""


class RateLimited(HandoffError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class TooManyWaiting(HandoffError):
    """The user already has the most calls waiting at once that one user may."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class Busy(HandoffError):
    """New conversations are arriving faster than NEW_CONVERSATIONS_PER_MINUTE."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class InvalidChoice(HandoffError):
    """Not one of keep_waiting, leave_message, continue_with_assistant."""


class NothingToChoose(HandoffError):
    """No conversation is waiting for an agent: none yet, an agent has it, or it ended."""
