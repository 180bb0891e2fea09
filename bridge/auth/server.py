"""The OAuth 2.0 authorization server GPT Actions and MCP clients sign users in with.

Authorization-code grant (RFC 6749) with refresh tokens; users authenticated at an
upstream OpenID Connect provider. Clients: the confidential GPT client from settings
(redirect URIs matched against patterns), plus clients registered at the registration
endpoint (RFC 7591; public or confidential, redirect URIs matched exactly, PKCE S256
required of public ones). Codes are single-use and short-lived, bound to the client,
redirect URI and resource; replaying a code or a rotated refresh token revokes
everything issued from that code, including what a request racing the replay is issued.

The parts: :mod:`bridge.auth.clients` (who the clients are, registration),
:mod:`bridge.auth.sign_in` (the browser's part: authorize, callback, consent), and here
the token endpoint, token checks and metadata.

Resources (RFC 8707): a token is bound to the ``resource`` it was asked for. ``/mcp``
accepts tokens for ``PUBLIC_URL/mcp`` or for the whole service (``PUBLIC_URL``); the
HTTP API, which GPT Actions reach without naming a resource, accepts any live token of
this server (it fronts the same conversations, for the same identity).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from bridge.auth import store
from bridge.auth.clients import Client, Clients
from bridge.auth.constant_time import same_secret
from bridge.auth.oidc import OidcProvider, s256
from bridge.auth.results import OAuthError, TokenResponse
from bridge.auth.sign_in import SignIn
from bridge.auth.store import OAuthStore
from bridge.config import AuthSettings
from bridge.coordination import RateLimits


class AuthorizationServer:
    def __init__(
        self,
        oauth_store: OAuthStore,
        settings: AuthSettings,
        public_url: str,
        rate_limits: RateLimits,
    ) -> None:
        self._store = oauth_store
        self._settings = settings
        self.issuer = public_url
        self.mcp_resource = f"{public_url}/mcp"
        self.clients = Clients(oauth_store, settings, rate_limits)
        self.sign_in = SignIn(
            oauth_store,
            settings,
            self.clients,
            OidcProvider(
                settings.oidc_issuer,
                settings.oidc_client_id,
                settings.oidc_client_secret,
                f"{public_url}/oauth/callback",
            ),
            rate_limits,
            issuer=public_url,
            resource_of=self._resource,
        )

    # --- the token endpoint ---------------------------------------------------------------

    async def token(self, form: Mapping[str, str], authorization: str) -> TokenResponse:
        try:
            client = await self.clients.authenticate(form, authorization)
            grant_type = form.get("grant_type", "")
            if grant_type == "authorization_code":
                return await self._exchange_code(form, client)
            if grant_type == "refresh_token":
                return await self._refresh(form, client)
            raise OAuthError("unsupported_grant_type", "Use authorization_code or refresh_token.")
        except OAuthError as error:
            return error.response()

    async def _exchange_code(self, form: Mapping[str, str], client: Client) -> TokenResponse:
        code, first = await self._store.use_code(store.hash_secret(form.get("code", "")))
        if code is None:
            raise OAuthError("invalid_grant", "Unknown authorization code.")
        if not first:
            # A replayed code: whoever holds it may not be the client; revoke its tokens.
            await self._store.revoke_family(code.code_hash)
            raise OAuthError("invalid_grant", "This authorization code was already used.")
        if code.expires_at < time.time():
            raise OAuthError("invalid_grant", "This authorization code has expired.")
        if code.client_id != client.client_id:
            raise OAuthError("invalid_grant", "This code was issued to another client.")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization.")
        if client.public and not code.code_challenge:
            raise OAuthError("invalid_grant", "PKCE is required of public clients.")
        if code.code_challenge:
            verifier = form.get("code_verifier", "")
            if not verifier or not same_secret(s256(verifier), code.code_challenge):
                raise OAuthError("invalid_grant", "code_verifier does not match the challenge.")
        resource = self._token_resource(form, code.resource)
        return await self._issue(code.code_hash, code, resource, client)

    async def _refresh(self, form: Mapping[str, str], client: Client) -> TokenResponse:
        old = await self._store.find_token(
            store.hash_secret(form.get("refresh_token", "")), "refresh"
        )
        if old is None or old.client_id != client.client_id:
            raise OAuthError("invalid_grant", "Unknown refresh token.")
        resource = self._token_resource(form, old.resource)
        if old.revoked_at is not None or not await self._store.revoke_token(old.token_hash):
            # Rotated away already: a stolen copy is being replayed.
            await self._store.revoke_family(old.family)
            raise OAuthError("invalid_grant", "This refresh token was revoked.")
        if old.expires_at < time.time():
            raise OAuthError("invalid_grant", "This refresh token has expired.")
        return await self._issue(old.family, old, resource, client)

    def _token_resource(self, form: Mapping[str, str], granted: str | None) -> str | None:
        """The audience of the tokens to issue: the one granted, narrowed (never widened
        or changed) by a resource named at the token endpoint."""
        asked = form.get("resource")
        if not asked:
            return granted
        resource = self._resource(asked)
        if resource is None or (granted is not None and resource != granted):
            raise OAuthError("invalid_target", "The resource differs from the one authorized.")
        return resource

    async def _issue(
        self, family: str, grant: store.Grant, resource: str | None, client: Client
    ) -> TokenResponse:
        await self.clients.used(client)
        access = await self._issue_token("access", family, grant, resource)
        refresh = await self._issue_token("refresh", family, grant, resource)
        return TokenResponse(
            200,
            {
                "access_token": access,
                "token_type": "bearer",
                "expires_in": self._settings.access_token_seconds,
                "refresh_token": refresh,
                "scope": grant.scope,
            },
        )

    async def _issue_token(
        self, kind: store.TokenKind, family: str, grant: store.Grant, resource: str | None
    ) -> str:
        token = store.new_secret()
        now = time.time()
        lifetime = (
            self._settings.access_token_seconds
            if kind == "access"
            else self._settings.refresh_token_seconds
        )
        await self._store.save_token(
            store.TokenRow(
                client_id=grant.client_id,
                subject=grant.subject,
                scope=grant.scope,
                profile=grant.profile,
                token_hash=store.hash_secret(token),
                kind=kind,
                family=family,
                expires_at=now + lifetime,
                created_at=now,
                revoked_at=None,
                resource=resource,
            )
        )
        return token

    # --- protected resources --------------------------------------------------------------

    async def check_access_token(self, token: str) -> store.TokenRow | None:
        row = await self._store.find_token(store.hash_secret(token), "access")
        if row is None or row.revoked_at is not None or row.expires_at < time.time():
            return None
        return row

    def _resource(self, value: str) -> str | None:
        """The canonical form of a resource this server protects, or None if it is not one."""
        trimmed = value.rstrip("/")
        for known in (self.issuer, self.mcp_resource):
            if trimmed.lower() == known.lower():
                return known
        return None

    def audience_allows(self, row: store.TokenRow, resource: str) -> bool:
        """Whether a token is good at ``resource``: issued for it, or for the whole service."""
        return row.resource in (resource, self.issuer)

    # --- metadata -------------------------------------------------------------------------

    def server_metadata(self) -> dict[str, object]:
        """RFC 8414."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/oauth/authorize",
            "token_endpoint": f"{self.issuer}/oauth/token",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "registration_endpoint": f"{self.issuer}/oauth/register",
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "scopes_supported": [self._settings.scope],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
        }

    def resource_metadata(self) -> dict[str, object]:
        """RFC 9728, served at the root and at the MCP endpoint's path-suffixed form: both
        name the MCP endpoint, the resource MCP clients discover them from (the 401 from
        /mcp points at the root form)."""
        return {
            "resource": self.mcp_resource,
            "authorization_servers": [self.issuer],
            "scopes_supported": [self._settings.scope],
            "bearer_methods_supported": ["header"],
            "resource_name": "Flex Bridge",
        }
