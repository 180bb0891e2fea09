"""Splitting long messages into parts Twilio accepts (at most 1,600 characters each)."""

from __future__ import annotations

TWILIO_BODY_LIMIT = 1600


def split_message(text: str, limit: int = TWILIO_BODY_LIMIT) -> list[str]:
    """Ordered parts of at most ``limit`` characters whose concatenation is ``text``.

    Cuts after the last whitespace in each window when there is one in its second half,
    so words stay whole; otherwise cuts hard at the limit.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2")
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind(" "), window.rfind("\n"))
        cut = cut + 1 if cut >= limit // 2 else limit
        parts.append(rest[:cut])
        rest = rest[cut:]
    if rest or not parts:
        parts.append(rest)
    return parts
