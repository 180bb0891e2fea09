"""Comparing secrets without leaking them through timing, whatever text they hold."""

from __future__ import annotations

import hmac


def same_secret(offered: str, expected: str) -> bool:
    """Constant time in the content. Compared as UTF-8 bytes: ``hmac.compare_digest``
    refuses ``str`` with non-ASCII characters (a TypeError a hostile value could raise)."""
    return hmac.compare_digest(
        offered.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )
