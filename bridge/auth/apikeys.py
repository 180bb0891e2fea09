"""API keys, accepted the three ways a GPT Action's "API Key" authentication sends them."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from werkzeug.datastructures import Headers

#: Request headers as either framework holds them (Quart's, or the ASGI ones at /mcp).
HeaderSource = Headers | Mapping[str, str]


def presented_key(headers: HeaderSource, custom_header: str) -> str | None:
    """The key from ``Authorization: Bearer``, ``Authorization: Basic`` (the key as the
    password, or as the user name with an empty password) or the custom header."""
    authorization = headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
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
        found |= hmac.compare_digest(presented.encode(), key.encode())
    return found
