"""Who the caller is, as Twilio may see it: a keyed hash, never the raw name."""

from __future__ import annotations

import hashlib
import hmac
import re

from bridge.errors import ApiError

_USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{1,128}$")


def check_username(username: str) -> str:
    if not _USERNAME.match(username):
        raise ApiError(
            400,
            "invalid_username",
            "The username must be 1 to 128 characters of letters, digits and . _ @ + -.",
        )
    return username


def identity_hash(secret: str, subject: str) -> str:
    """HMAC-SHA256 of the caller's identity under BRIDGE_SECRET, as 64 hex digits."""
    return hmac.new(secret.encode(), subject.encode(), hashlib.sha256).hexdigest()
