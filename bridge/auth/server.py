"""The OAuth 2.0 authorization server a GPT Action signs users in with (RFC 6749).

Authorization-code grant with refresh tokens, one confidential client from settings,
users authenticated at an upstream OpenID Connect provider. Codes are single-use and
short-lived, bound to the client and redirect URI; replaying a code or a rotated refresh
token revokes everything issued from that code.
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
from urllib.parse import unquote, urlencode

import aiosqlite

from bridge.auth import store
from bridge.auth.oidc import OidcProvider, UpstreamError, VerifiedUser, s256
from bridge.config import AuthSettings

SIGN_IN_SECONDS = 600  # how long a user has to finish signing in upstream


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
    def __init__(self, db: aiosqlite.Connection, settings: AuthSettings, public_url: str) -> None:
        self._db = db
        self._settings = settings
        self.issuer = public_url
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
        if not hmac.compare_digest(client_id, self._settings.oauth_client_id):
            return ErrorPage("This sign-in link names an unknown client (client_id).")
        if not self.redirect_uri_allowed(redirect_uri):
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
        pending = store.PendingSignIn(
            upstream_state=secrets.token_urlsafe(24),
            client_id=client_id,
            redirect_uri=redirect_uri,
            state=state,
            scope=self._settings.scope,
            nonce=secrets.token_urlsafe(24),
            code_verifier=secrets.token_urlsafe(48),
            code_challenge=challenge,
            resource=params.get("resource") or None,
            created_at=time.time(),
        )
        try:
            url = await self.upstream.authorization_url(
                pending.upstream_state, pending.nonce, pending.code_verifier
            )
        except UpstreamError:
            return error("temporarily_unavailable", "The sign-in provider cannot be reached.")
        await store.save_pending(self._db, pending)
        return Redirect(url)

    async def callback(self, params: Mapping[str, str]) -> ErrorPage | Redirect:
        """GET /oauth/callback: the upstream provider sends the user back here."""
        pending = await store.take_pending(self._db, params.get("state", ""), SIGN_IN_SECONDS)
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
        code = await store.issue_code(self._db, grant, pending, self._settings.code_seconds)
        return back({"code": code})

    # --- the token endpoint ---------------------------------------------------------------

    async def token(self, form: Mapping[str, str], authorization: str) -> TokenResponse:
        try:
            self._authenticate_client(form, authorization)
            grant_type = form.get("grant_type", "")
            if grant_type == "authorization_code":
                return await self._exchange_code(form)
            if grant_type == "refresh_token":
                return await self._refresh(form)
            raise OAuthError("unsupported_grant_type", "Use authorization_code or refresh_token.")
        except OAuthError as error:
            return error.response()

    def _authenticate_client(self, form: Mapping[str, str], authorization: str) -> None:
        basic = _basic_credentials(authorization)
        posted = (form.get("client_id", ""), form.get("client_secret", ""))
        if basic and posted[1]:
            raise OAuthError("invalid_request", "Use one client authentication method, not two.")
        client_id, secret = basic or posted
        if not client_id or not secret:
            raise OAuthError("invalid_client", "Client authentication is required.", 401)
        expected = self._settings.oauth_client_secret_hash
        id_ok = hmac.compare_digest(client_id, self._settings.oauth_client_id)
        secret_ok = hmac.compare_digest(store.hash_secret(secret), expected)
        if not (id_ok and secret_ok):
            raise OAuthError("invalid_client", "Unknown client or wrong client secret.", 401)

    async def _exchange_code(self, form: Mapping[str, str]) -> TokenResponse:
        code, first = await store.use_code(self._db, form.get("code", ""))
        if code is None:
            raise OAuthError("invalid_grant", "Unknown authorization code.")
        if not first:
            # A replayed code: whoever holds it may not be the client; revoke its tokens.
            await store.revoke_family(self._db, code.code_hash)
            raise OAuthError("invalid_grant", "This authorization code was already used.")
        if code.expires_at < time.time():
            raise OAuthError("invalid_grant", "This authorization code has expired.")
        if code.client_id != self._settings.oauth_client_id:
            raise OAuthError("invalid_grant", "This code was issued to another client.")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization.")
        if code.code_challenge:
            verifier = form.get("code_verifier", "")
            if not verifier or not hmac.compare_digest(s256(verifier), code.code_challenge):
                raise OAuthError("invalid_grant", "code_verifier does not match the challenge.")
        return await self._issue(code.code_hash, code)

    async def _refresh(self, form: Mapping[str, str]) -> TokenResponse:
        old = await store.find_token(self._db, form.get("refresh_token", ""), "refresh")
        if old is None or old.client_id != self._settings.oauth_client_id:
            raise OAuthError("invalid_grant", "Unknown refresh token.")
        if old.revoked_at is not None or not await store.revoke_token(self._db, old.token_hash):
            # Rotated away already: a stolen copy is being replayed.
            await store.revoke_family(self._db, old.family)
            raise OAuthError("invalid_grant", "This refresh token was revoked.")
        if old.expires_at < time.time():
            raise OAuthError("invalid_grant", "This refresh token has expired.")
        return await self._issue(old.family, old)

    async def _issue(self, family: str, grant: store.Grant) -> TokenResponse:
        access = await store.issue_token(
            self._db, "access", family, grant, self._settings.access_token_seconds
        )
        refresh = await store.issue_token(
            self._db, "refresh", family, grant, self._settings.refresh_token_seconds
        )
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

    # --- protected resources --------------------------------------------------------------

    async def check_access_token(self, token: str) -> store.TokenRow | None:
        row = await store.find_token(self._db, token, "access")
        if row is None or row.revoked_at is not None or row.expires_at < time.time():
            return None
        return row

    def audience_allows(self, row: store.TokenRow, resource: str) -> bool:
        """Whether a token is good at ``resource``."""
        return True

    # --- metadata -------------------------------------------------------------------------

    def server_metadata(self) -> dict[str, object]:
        """RFC 8414."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/oauth/authorize",
            "token_endpoint": f"{self.issuer}/oauth/token",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": [self._settings.scope],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
        }

    def resource_metadata(self) -> dict[str, object]:
        """RFC 9728."""
        return {
            "resource": self.issuer,
            "authorization_servers": [self.issuer],
            "scopes_supported": [self._settings.scope],
            "bearer_methods_supported": ["header"],
            "resource_name": "Flex Bridge",
        }


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
