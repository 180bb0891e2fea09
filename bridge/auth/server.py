"""The OAuth 2.0 authorization server GPT Actions and MCP clients sign users in with.

Authorization-code grant (RFC 6749) with refresh tokens; users authenticated at an
upstream OpenID Connect provider. Clients: the confidential GPT client from settings
(redirect URIs matched against patterns), plus clients registered at the registration
endpoint (RFC 7591; public or confidential, redirect URIs matched exactly, PKCE S256
required of public ones). Codes are single-use and short-lived, bound to the client,
redirect URI and resource; replaying a code or a rotated refresh token revokes
everything issued from that code.

Resources (RFC 8707): a token is bound to the ``resource`` it was asked for. ``/mcp``
accepts tokens for ``PUBLIC_URL/mcp`` or for the whole service (``PUBLIC_URL``); the
HTTP API, which GPT Actions reach without naming a resource, accepts any live token of
this server (it fronts the same conversations, for the same identity).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlencode, urlsplit

from bridge.auth import store
from bridge.auth.oidc import OidcProvider, UpstreamError, VerifiedUser, s256
from bridge.auth.store import OAuthStore
from bridge.config import AuthSettings

SIGN_IN_SECONDS = 600  # how long a user has to finish signing in upstream
AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")
MAX_REDIRECT_URIS = 10


@dataclass(frozen=True)
class Client:
    """A client this server knows: the configured GPT client, or a registered one."""

    client_id: str
    public: bool
    registered: bool  # registered clients' redirect URIs are matched exactly
    redirect_uris: tuple[str, ...] = ()


@dataclass(frozen=True)
class ErrorPage:
    """Shown to the user, not redirected (the redirect URI cannot be trusted)."""

    message: str


@dataclass(frozen=True)
class Redirect:
    url: str


@dataclass(frozen=True)
class TokenResponse:
    status: int
    body: dict[str, object]
    www_authenticate: str | None = None


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> TokenResponse:
        header = 'Basic realm="oauth"' if self.status == 401 else None
        body: dict[str, object] = {"error": self.error, "error_description": self.description}
        return TokenResponse(self.status, body, header)


def redirect_pattern(template: str) -> re.Pattern[str]:
    """``https://chatgpt.com/aip/g-{id}/oauth/callback`` → a regex where only {id} varies."""
    parts = [re.escape(part) for part in template.split("{id}")]
    return re.compile("^" + "[A-Za-z0-9_-]{1,128}".join(parts) + "$")


def with_query(url: str, params: Mapping[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


class AuthorizationServer:
    def __init__(self, oauth_store: OAuthStore, settings: AuthSettings, public_url: str) -> None:
        self._store = oauth_store
        self._settings = settings
        self.issuer = public_url
        self.mcp_resource = f"{public_url}/mcp"
        self._patterns = [redirect_pattern(t) for t in settings.redirect_uris]
        self.upstream = OidcProvider(
            settings.oidc_issuer,
            settings.oidc_client_id,
            settings.oidc_client_secret,
            f"{public_url}/oauth/callback",
        )

    # --- the authorization endpoint -------------------------------------------------------

    def redirect_uri_allowed(self, uri: str) -> bool:
        return any(p.match(uri) for p in self._patterns)

    async def authorize(self, params: Mapping[str, str]) -> ErrorPage | Redirect:
        """GET /oauth/authorize: check the request, then send the user to sign in upstream."""
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        client = await self.find_client(client_id)
        if client is None:
            return ErrorPage("This sign-in link names an unknown client (client_id).")
        allowed = (
            redirect_uri in client.redirect_uris
            if client.registered
            else self.redirect_uri_allowed(redirect_uri)
        )
        if not allowed:
            return ErrorPage("This sign-in link's redirect_uri is not on the allow-list.")
        state = params.get("state", "")

        def error(code: str, description: str) -> Redirect:
            reply = {"error": code, "error_description": description, "iss": self.issuer}
            if state:
                reply["state"] = state
            return Redirect(with_query(redirect_uri, reply))

        if params.get("response_type") != "code":
            return error("unsupported_response_type", "Only response_type=code is supported.")
        if not state:
            return error("invalid_request", "The state parameter is required.")
        requested = params.get("scope", "").split()
        if any(s != self._settings.scope for s in requested):
            return error("invalid_scope", f"The only scope is {self._settings.scope!r}.")
        challenge = params.get("code_challenge") or None
        if challenge and params.get("code_challenge_method", "plain") != "S256":
            return error("invalid_request", "code_challenge_method must be S256.")
        if client.public and not challenge:
            return error("invalid_request", "PKCE is required: send an S256 code_challenge.")
        resource = params.get("resource") or None
        if resource is not None and self._resource(resource) is None:
            return error("invalid_target", f"Unknown resource; use {self.mcp_resource}.")
        pending = store.PendingSignIn(
            upstream_state=secrets.token_urlsafe(24),
            client_id=client_id,
            redirect_uri=redirect_uri,
            state=state,
            scope=self._settings.scope,
            nonce=secrets.token_urlsafe(24),
            code_verifier=secrets.token_urlsafe(48),
            code_challenge=challenge,
            resource=self._resource(resource) if resource else None,
            created_at=time.time(),
        )
        try:
            url = await self.upstream.authorization_url(
                pending.upstream_state, pending.nonce, pending.code_verifier
            )
        except UpstreamError:
            return error("temporarily_unavailable", "The sign-in provider cannot be reached.")
        await self._store.save_pending(pending)
        return Redirect(url)

    async def callback(self, params: Mapping[str, str]) -> ErrorPage | Redirect:
        """GET /oauth/callback: the upstream provider sends the user back here."""
        pending = await self._store.take_pending(params.get("state", ""), SIGN_IN_SECONDS)
        if pending is None:
            return ErrorPage("This sign-in has expired or was already used; start again.")

        def back(reply: dict[str, str]) -> Redirect:
            reply.update({"state": pending.state, "iss": self.issuer})
            return Redirect(with_query(pending.redirect_uri, reply))

        if params.get("error") or not params.get("code"):
            return back({"error": "access_denied", "error_description": "Sign-in was declined."})
        try:
            user = await self.upstream.sign_in(params["code"], pending.code_verifier, pending.nonce)
        except UpstreamError:
            return back({"error": "server_error", "error_description": "Sign-in failed."})
        grant = store.Grant(pending.client_id, user.subject, pending.scope, _profile(user))
        code = store.new_secret()
        await self._store.save_code(
            store.CodeRow(
                client_id=grant.client_id,
                subject=grant.subject,
                scope=grant.scope,
                profile=grant.profile,
                code_hash=store.hash_secret(code),
                redirect_uri=pending.redirect_uri,
                code_challenge=pending.code_challenge,
                resource=pending.resource,
                expires_at=time.time() + self._settings.code_seconds,
                used_at=None,
            )
        )
        return back({"code": code})

    # --- the token endpoint ---------------------------------------------------------------

    async def token(self, form: Mapping[str, str], authorization: str) -> TokenResponse:
        try:
            client = await self._authenticate_client(form, authorization)
            grant_type = form.get("grant_type", "")
            if grant_type == "authorization_code":
                return await self._exchange_code(form, client)
            if grant_type == "refresh_token":
                return await self._refresh(form, client)
            raise OAuthError("unsupported_grant_type", "Use authorization_code or refresh_token.")
        except OAuthError as error:
            return error.response()

    async def find_client(self, client_id: str) -> Client | None:
        if not client_id:
            return None
        if self._settings.oauth_client_id and hmac.compare_digest(
            client_id, self._settings.oauth_client_id
        ):
            return Client(client_id, public=False, registered=False)
        row = await self._store.find_client(client_id)
        if row is None:
            return None
        return Client(
            row.client_id, public=row.public, registered=True, redirect_uris=row.redirect_uris
        )

    async def _authenticate_client(self, form: Mapping[str, str], authorization: str) -> Client:
        basic = _basic_credentials(authorization)
        posted = (form.get("client_id", ""), form.get("client_secret", ""))
        if basic and posted[1]:
            raise OAuthError("invalid_request", "Use one client authentication method, not two.")
        client_id, secret = basic or posted
        if client_id and not secret and not basic:
            # A public client identifies itself and proves nothing but the PKCE verifier.
            row = await self._store.find_client(client_id)
            if row is not None and row.public:
                return Client(row.client_id, True, True, row.redirect_uris)
        if not client_id or not secret:
            raise OAuthError("invalid_client", "Client authentication is required.", 401)
        if self._settings.oauth_client_id and hmac.compare_digest(
            client_id, self._settings.oauth_client_id
        ):
            expected = self._settings.oauth_client_secret_hash
            if hmac.compare_digest(store.hash_secret(secret), expected):
                return Client(client_id, public=False, registered=False)
        else:
            row = await self._store.find_client(client_id)
            if (
                row is not None
                and row.client_secret_hash is not None
                and hmac.compare_digest(store.hash_secret(secret), row.client_secret_hash)
            ):
                return Client(row.client_id, False, True, row.redirect_uris)
        raise OAuthError("invalid_client", "Unknown client or wrong client secret.", 401)

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
            if not verifier or not hmac.compare_digest(s256(verifier), code.code_challenge):
                raise OAuthError("invalid_grant", "code_verifier does not match the challenge.")
        resource = self._token_resource(form, code.resource)
        return await self._issue(code.code_hash, code, resource)

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
        return await self._issue(old.family, old, resource)

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

    async def _issue(self, family: str, grant: store.Grant, resource: str | None) -> TokenResponse:
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

    # --- dynamic client registration (RFC 7591) -------------------------------------------

    async def register(self, body: object) -> TokenResponse:
        try:
            return await self._register(body)
        except OAuthError as error:
            return error.response()

    async def _register(self, body: object) -> TokenResponse:
        if not isinstance(body, dict):
            raise OAuthError(
                "invalid_client_metadata", "Send the client metadata as a JSON object."
            )
        uris = body.get("redirect_uris")
        if (
            not isinstance(uris, list)
            or not uris
            or len(uris) > MAX_REDIRECT_URIS
            or not all(isinstance(u, str) and _redirect_uri_ok(u) for u in uris)
        ):
            raise OAuthError(
                "invalid_redirect_uri",
                f"redirect_uris must list 1 to {MAX_REDIRECT_URIS} absolute https URLs without "
                "a fragment (http only for localhost).",
            )
        method = body.get("token_endpoint_auth_method", "client_secret_basic")
        if method not in AUTH_METHODS:
            raise OAuthError(
                "invalid_client_metadata",
                f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}.",
            )
        grant_types = body.get("grant_types", ["authorization_code"])
        if not isinstance(grant_types, list) or not set(grant_types) <= {
            "authorization_code",
            "refresh_token",
        }:
            raise OAuthError(
                "invalid_client_metadata", "grant_types: authorization_code and refresh_token."
            )
        response_types = body.get("response_types", ["code"])
        if not isinstance(response_types, list) or not set(response_types) <= {"code"}:
            raise OAuthError("invalid_client_metadata", "response_types: only code.")
        scope = body.get("scope")
        if scope is not None and (
            not isinstance(scope, str) or any(s != self._settings.scope for s in scope.split())
        ):
            raise OAuthError(
                "invalid_client_metadata", f"The only scope is {self._settings.scope!r}."
            )
        name = body.get("client_name")
        metadata: dict[str, object] = {
            "redirect_uris": list(uris),
            "token_endpoint_auth_method": method,
            "grant_types": grant_types,
            "response_types": response_types,
            "scope": self._settings.scope,
        }
        if isinstance(name, str) and name.strip():
            metadata["client_name"] = name.strip()[:200]
        client_id = f"mcp-{secrets.token_urlsafe(18)}"
        secret = None if method == "none" else store.new_secret()
        await self._store.save_client(
            store.ClientRow(
                client_id=client_id,
                client_secret_hash=store.hash_secret(secret) if secret else None,
                auth_method=method,
                redirect_uris=tuple(uris),
                metadata=metadata,
            ),
        )
        answer: dict[str, object] = {
            "client_id": client_id,
            "client_id_issued_at": int(time.time()),
            **metadata,
        }
        if secret is not None:
            answer.update({"client_secret": secret, "client_secret_expires_at": 0})
        return TokenResponse(201, answer)

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


def _redirect_uri_ok(uri: str) -> bool:
    parts = urlsplit(uri)
    if parts.fragment or not parts.netloc or "#" in uri:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1")


def _profile(user: VerifiedUser) -> str:
    return json.dumps({"name": user.name, "email": user.email})


def _basic_credentials(authorization: str) -> tuple[str, str] | None:
    """client_secret_basic: both parts form-urlencoded, then Base64 (RFC 6749 §2.3.1)."""
    if not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return unquote(user.replace("+", " ")), unquote(password.replace("+", " "))
