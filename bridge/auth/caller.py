"""Who is calling, by AUTH_MODE: the one place where credentials become a caller.

Used by every front door (the HTTP routes, ``/mcp``) and by ``/metrics``. It reads
headers and answers a :class:`Caller` or raises :class:`Unauthenticated`, which carries
the ``WWW-Authenticate`` challenge; each front door only sends that as its 401.

- ``none``: anyone; the user is named by the front door (the path, the MCP session).
- ``apikey``: a valid key (see :mod:`bridge.auth.apikeys`); the user is named as above,
  since one key is shared by everyone behind a client.
- ``oauth``: the bridge's own access token, good for the resource asked; the user is the
  token's subject, the same identity at the HTTP API and at MCP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bridge.auth.apikeys import key_matches, presented_key
from bridge.auth.constant_time import same_secret
from bridge.auth.headers import HeaderSource, bearer_token
from bridge.auth.server import AuthorizationServer
from bridge.config import AuthSettings
from bridge.identity import for_oauth_subject

#: What the caller wants to reach: the HTTP API (tokens for any resource of this server,
#: since GPT Actions name none) or the MCP endpoint (tokens for it or the whole service).
Resource = Literal["api", "mcp"]


@dataclass(frozen=True)
class Caller:
    """``identity`` is None when the front door names the user (modes none and apikey)."""

    identity: str | None
    profile: str | None = None  # verified name and email (JSON), when shared with agents


class Unauthenticated(Exception):
    """Missing or wrong credentials: answer 401 with ``challenge`` as WWW-Authenticate."""

    def __init__(self, code: str, message: str, challenge: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.challenge = challenge


def require_bearer(headers: HeaderSource, expected: str, realm: str, what: str) -> None:
    """Raise Unauthenticated unless ``Authorization: Bearer <expected>`` was sent."""
    offered = bearer_token(headers)
    if offered is None or not same_secret(offered, expected):
        raise Unauthenticated(
            "unauthorized",
            f"Send the {what} as Authorization: Bearer <token>.",
            f'Bearer realm="{realm}"',
        )


class CallerCheck:
    def __init__(
        self,
        auth: AuthSettings,
        secret: str,
        public_url: str,
        oauth: AuthorizationServer | None,
    ) -> None:
        if auth.mode == "oauth" and oauth is None:
            raise ValueError("AUTH_MODE=oauth needs the authorization server")
        self._auth = auth
        self._secret = secret
        self._oauth = oauth
        self._resource_metadata = f"{public_url}/.well-known/oauth-protected-resource"

    async def authenticate(self, headers: HeaderSource, resource: Resource) -> Caller:
        if self._auth.mode == "oauth":
            return await self._signed_in(headers, resource)
        if self._auth.mode == "apikey":
            key = presented_key(headers, self._auth.api_key_header)
            if key is None or not key_matches(key, self._auth.api_keys):
                raise Unauthenticated(
                    "unauthorized",
                    "Send a valid API key as Authorization: Bearer <key>, as the password of "
                    f"Authorization: Basic, or in the {self._auth.api_key_header} header.",
                    'Bearer realm="flex-bridge"',
                )
        return Caller(None)

    async def _signed_in(self, headers: HeaderSource, resource: Resource) -> Caller:
        assert self._oauth is not None
        challenge = f'Bearer resource_metadata="{self._resource_metadata}"'
        token = bearer_token(headers)
        if token is None:
            raise Unauthenticated(
                "unauthorized",
                "Send the user's access token as Authorization: Bearer <token>.",
                challenge,
            )
        row = await self._oauth.check_access_token(token)
        if row is None or (
            resource == "mcp" and not self._oauth.audience_allows(row, self._oauth.mcp_resource)
        ):
            raise Unauthenticated(
                "invalid_token",
                "Sign in again: the access token is expired, revoked or not for this endpoint.",
                challenge + ', error="invalid_token"',
            )
        profile = row.profile if self._auth.share_profile_with_agent else None
        return Caller(for_oauth_subject(self._secret, row.subject), profile)
