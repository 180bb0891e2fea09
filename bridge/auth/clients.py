"""The OAuth clients this server knows: the configured GPT client, and clients registered
at the registration endpoint (RFC 7591), with their authentication and their vetting.

A client is *trusted* when the operator vetted it by setting (OAUTH_TRUSTED_CLIENTS): the
configured GPT client, or a registered client whose redirect URIs are all documented
assistant callbacks. Every other client gets the bridge's consent page, and its requests'
errors are shown as a page, never redirected to it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from bridge.auth import store
from bridge.auth.constant_time import same_secret
from bridge.auth.results import OAuthError, TokenResponse
from bridge.auth.store import OAuthStore
from bridge.config import AuthSettings
from bridge.coordination import RateLimits

AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")
MAX_REDIRECT_URIS = 10
MAX_URI_CHARS = 512
MAX_NAME_CHARS = 100
#: A client registered and never given tokens is removed after this long.
UNUSED_CLIENT_SECONDS = 24 * 3600
#: Registrations from all addresses together may be this many times one address's.
OVERALL_FACTOR = 10


@dataclass(frozen=True)
class Client:
    client_id: str
    public: bool
    registered: bool  # registered clients' redirect URIs are matched exactly
    redirect_uris: tuple[str, ...] = ()
    name: str = ""
    trusted: bool = False  # vetted by the operator: no consent page


def redirect_pattern(template: str) -> re.Pattern[str]:
    """``https://chatgpt.com/aip/g-{id}/oauth/callback`` → a regex where only {id} varies
    (used with ``fullmatch``: a trailing newline is not a match)."""
    parts = [re.escape(part) for part in template.split("{id}")]
    return re.compile("[A-Za-z0-9_-]{1,128}".join(parts))


def plain_text(value: str, limit: int) -> bool:
    """At most ``limit`` characters, none of them a control character or white space."""
    return len(value) <= limit and all(0x20 < ord(c) != 0x7F for c in value)


def redirect_uri_ok(uri: str) -> bool:
    """An absolute https URL (http only for localhost), no fragment, nothing hidden."""
    if not plain_text(uri, MAX_URI_CHARS):
        return False
    parts = urlsplit(uri)
    if parts.fragment or not parts.netloc or "#" in uri:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1")


class Clients:
    def __init__(
        self, oauth_store: OAuthStore, settings: AuthSettings, rate_limits: RateLimits
    ) -> None:
        self._store = oauth_store
        self._settings = settings
        self._rate_limits = rate_limits
        self._patterns = [redirect_pattern(t) for t in settings.redirect_uris]
        self._trusted_uris = frozenset(settings.trusted_redirect_uris)

    def _is_gpt_client(self, client_id: str) -> bool:
        configured = self._settings.oauth_client_id
        return bool(configured) and same_secret(client_id, configured)

    async def find(self, client_id: str) -> Client | None:
        if not client_id:
            return None
        if self._is_gpt_client(client_id):
            return Client(
                client_id,
                public=False,
                registered=False,
                name="the configured GPT",
                trusted=self._settings.trust_gpt_client,
            )
        row = await self._store.find_client(client_id)
        return self._client(row) if row is not None else None

    def _client(self, row: store.ClientRow) -> Client:
        name = row.metadata.get("client_name")
        return Client(
            row.client_id,
            public=row.public,
            registered=True,
            redirect_uris=row.redirect_uris,
            name=name if isinstance(name, str) else "",
            trusted=bool(row.redirect_uris) and set(row.redirect_uris) <= self._trusted_uris,
        )

    def redirect_allowed(self, client: Client, uri: str) -> bool:
        """Exact for registered clients; the GPT client's patterns fully matched."""
        if not plain_text(uri, MAX_URI_CHARS):
            return False
        if client.registered:
            return uri in client.redirect_uris
        return any(p.fullmatch(uri) for p in self._patterns)

    # --- client authentication at the token endpoint --------------------------------------

    async def authenticate(self, form: Mapping[str, str], authorization: str) -> Client:
        basic = _basic_credentials(authorization)
        posted = (form.get("client_id", ""), form.get("client_secret", ""))
        if basic and posted[1]:
            raise OAuthError("invalid_request", "Use one client authentication method, not two.")
        client_id, secret = basic or posted
        if client_id and not secret and not basic:
            # A public client identifies itself and proves nothing but the PKCE verifier.
            row = await self._store.find_client(client_id)
            if row is not None and row.public:
                return self._client(row)
        if not client_id or not secret:
            raise OAuthError("invalid_client", "Client authentication is required.", 401)
        if self._is_gpt_client(client_id):
            expected = self._settings.oauth_client_secret_hash
            if same_secret(store.hash_secret(secret), expected):
                found = await self.find(client_id)
                assert found is not None
                return found
        else:
            row = await self._store.find_client(client_id)
            if (
                row is not None
                and row.client_secret_hash is not None
                and same_secret(store.hash_secret(secret), row.client_secret_hash)
            ):
                return self._client(row)
        raise OAuthError("invalid_client", "Unknown client or wrong client secret.", 401)

    async def used(self, client: Client) -> None:
        if client.registered:
            await self._store.touch_client(client.client_id)

    # --- dynamic client registration (RFC 7591) -------------------------------------------

    async def register(self, body: object, requester: str) -> TokenResponse:
        try:
            return await self._register(body, requester)
        except OAuthError as error:
            return error.response()

    async def _register(self, body: object, requester: str) -> TokenResponse:
        per_minute = self._settings.register_per_minute
        wait = max(
            await self._rate_limits.take(f"oauth-register:{requester}", per_minute),
            await self._rate_limits.take("oauth-register", per_minute * OVERALL_FACTOR),
        )
        if wait:
            refused = OAuthError(
                "too_many_requests", "Too many clients registered; try again later.", 429
            ).response()
            return TokenResponse(refused.status, refused.body, retry_after=max(1, int(wait) + 1))
        now = time.time()
        await self._store.purge_clients(
            unused_since=now - UNUSED_CLIENT_SECONDS,
            idle_since=now - max(self._settings.refresh_token_seconds, UNUSED_CLIENT_SECONDS),
        )
        metadata = self._checked_metadata(body)
        method = str(metadata["token_endpoint_auth_method"])
        client_id = f"mcp-{secrets.token_urlsafe(18)}"
        secret = None if method == "none" else store.new_secret()
        uris = metadata["redirect_uris"]
        assert isinstance(uris, list)
        await self._store.save_client(
            store.ClientRow(
                client_id=client_id,
                client_secret_hash=store.hash_secret(secret) if secret else None,
                auth_method=_auth_method(method),
                redirect_uris=tuple(uris),
                metadata=metadata,
            )
        )
        answer: dict[str, object] = {
            "client_id": client_id,
            "client_id_issued_at": int(now),
            **metadata,
        }
        if secret is not None:
            answer.update({"client_secret": secret, "client_secret_expires_at": 0})
        return TokenResponse(201, answer)

    def _checked_metadata(self, body: object) -> dict[str, object]:
        """The metadata as it will be kept and answered: only what this server uses."""
        if not isinstance(body, dict):
            raise OAuthError(
                "invalid_client_metadata", "Send the client metadata as a JSON object."
            )
        uris = body.get("redirect_uris")
        if (
            not isinstance(uris, list)
            or not uris
            or len(uris) > MAX_REDIRECT_URIS
            or not all(isinstance(u, str) and redirect_uri_ok(u) for u in uris)
        ):
            raise OAuthError(
                "invalid_redirect_uri",
                f"redirect_uris must list 1 to {MAX_REDIRECT_URIS} absolute https URLs of at "
                f"most {MAX_URI_CHARS} characters, without a fragment, spaces or control "
                "characters (http only for localhost).",
            )
        method = body.get("token_endpoint_auth_method", "client_secret_basic")
        if method not in AUTH_METHODS:
            raise OAuthError(
                "invalid_client_metadata",
                f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}.",
            )
        grant_types = body.get("grant_types", ["authorization_code"])
        if not _strings(grant_types) or not set(grant_types) <= {
            "authorization_code",
            "refresh_token",
        }:
            raise OAuthError(
                "invalid_client_metadata", "grant_types: authorization_code and refresh_token."
            )
        response_types = body.get("response_types", ["code"])
        if not _strings(response_types) or not set(response_types) <= {"code"}:
            raise OAuthError("invalid_client_metadata", "response_types: only code.")
        scope = body.get("scope")
        if scope is not None and (
            not isinstance(scope, str) or any(s != self._settings.scope for s in scope.split())
        ):
            raise OAuthError(
                "invalid_client_metadata", f"The only scope is {self._settings.scope!r}."
            )
        metadata: dict[str, object] = {
            "redirect_uris": list(dict.fromkeys(uris)),
            "token_endpoint_auth_method": method,
            "grant_types": grant_types,
            "response_types": response_types,
            "scope": self._settings.scope,
        }
        name = body.get("client_name")
        if isinstance(name, str):
            shown = " ".join("".join(c for c in name if c.isprintable()).split())
            if shown:
                metadata["client_name"] = shown[:MAX_NAME_CHARS]
        assert len(json.dumps(metadata)) < 16 * 1024  # bounded by the checks above
        return metadata


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _auth_method(method: str) -> store.ClientAuthMethod:
    if method == "none":
        return "none"
    if method == "client_secret_post":
        return "client_secret_post"
    return "client_secret_basic"


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
