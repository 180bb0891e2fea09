"""Reading credentials from request headers, whichever framework holds them."""

from __future__ import annotations

from collections.abc import Mapping

from werkzeug.datastructures import Headers

#: Request headers as either framework holds them (Quart's, or the ASGI ones at /mcp).
HeaderSource = Headers | Mapping[str, str]


def bearer_token(headers: HeaderSource) -> str | None:
    """The token of ``Authorization: Bearer <token>``, if that is what was sent."""
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None
