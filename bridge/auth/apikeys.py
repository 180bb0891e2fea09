"""API keys, accepted the three ways a GPT Action's "API Key" authentication sends them."""

from __future__ import annotations

import base64
import binascii

from bridge.auth.constant_time import same_secret
from bridge.auth.headers import HeaderSource, bearer_token


def presented_key(headers: HeaderSource, custom_header: str) -> str | None:
    """The key from ``Authorization: Bearer``, ``Authorization: Basic`` (the key as the
    password, or as the user name with an empty password) or the custom header."""
    bearer = bearer_token(headers)
    if bearer is not None:
        return bearer
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic" and value.strip():
        try:
            user, _, password = (
                base64.b64decode(value.strip(), validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password or user or None
    custom = headers.get(custom_header, "").strip()
    return custom or None


def key_matches(presented: str, keys: tuple[str, ...]) -> bool:
    """Constant time in the key's content, and every configured key is compared."""
    found = False
    for key in keys:
        found |= same_secret(presented, key)
    return found
