"""Who the caller is, as Twilio may see it: a keyed hash, never the raw name.

Every rule that turns a caller into an identity is here: a user name from the path, an
OAuth subject, an MCP session. Each is an HMAC-SHA256 under BRIDGE_SECRET of a prefixed
value, so the three kinds can never collide.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from bridge.core.errors import InvalidUsername

_USERNAME = re.compile(r"[A-Za-z0-9._@+-]{1,128}")


def identity_hash(secret: str, subject: str) -> str:
    """HMAC-SHA256 of the caller's identity under BRIDGE_SECRET, as 64 hex digits."""
    return hmac.new(secret.encode(), subject.encode(), hashlib.sha256).hexdigest()


def for_username(secret: str, username: str) -> str:
    """The identity of a user named in the path (AUTH_MODE none or apikey)."""
    if not _USERNAME.fullmatch(username):
        raise InvalidUsername(username[:16])
    return identity_hash(secret, username)


def for_oauth_subject(secret: str, subject: str) -> str:
    """The identity of a signed-in user, the same through the HTTP API and MCP."""
    return identity_hash(secret, f"oauth:{subject}")


def for_mcp_session(secret: str, session_id: str) -> str:
    """The identity of an MCP session's user (AUTH_MODE none or apikey)."""
    return identity_hash(secret, f"mcp-session:{session_id}")
