"""Identifying the caller of a hand-off route, by AUTH_MODE."""

from __future__ import annotations

from dataclasses import dataclass

from quart import request

from bridge import logs
from bridge.auth.apikeys import key_matches, presented_key
from bridge.errors import ApiError
from bridge.identity import check_username, identity_hash
from bridge.services import services


@dataclass(frozen=True)
class Caller:
    identity: str  # the keyed hash Twilio sees
    profile: str | None  # verified name and email (JSON), when shared with the agent


def _bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


async def identify(username: str) -> Caller:
    """The caller's identity (see :func:`_identify`), noted for the request's log lines."""
    caller = await _identify(username)
    logs.identity.set(caller.identity)
    return caller


async def _identify(username: str) -> Caller:
    """The caller's identity; 401 when the credentials are missing or wrong.

    In ``oauth`` mode the identity is the signed-in user's (the token's subject) and the
    path's user name is ignored, so no caller can reach another user's conversation.
    """
    wired = services()
    auth = wired.settings.auth
    if auth.mode == "oauth":
        assert wired.oauth is not None
        token = _bearer()
        row = await wired.oauth.check_access_token(token) if token else None
        if row is None:
            challenge = (
                f'Bearer resource_metadata="{wired.settings.public_url}'
                '/.well-known/oauth-protected-resource"'
            )
            if token:
                challenge += ', error="invalid_token"'
            raise ApiError(
                401,
                "invalid_token" if token else "unauthorized",
                "Sign in again: the access token is missing, expired or revoked."
                if token
                else "Send the user's access token as Authorization: Bearer <token>.",
                headers={"WWW-Authenticate": challenge},
            )
        profile = row.profile if auth.share_profile_with_agent else None
        return Caller(identity_hash(wired.secret, f"oauth:{row.subject}"), profile)
    if auth.mode == "apikey":
        key = presented_key(request.headers, auth.api_key_header)
        if key is None or not key_matches(key, auth.api_keys):
            raise ApiError(
                401,
                "unauthorized",
                "Send a valid API key as Authorization: Bearer <key>, as the password of "
                f"Authorization: Basic, or in the {auth.api_key_header} header.",
                headers={"WWW-Authenticate": 'Bearer realm="flex-bridge"'},
            )
    return Caller(identity_hash(wired.secret, check_username(username)), None)
