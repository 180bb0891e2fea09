"""A development OpenID Connect provider at ``/sandbox/idp``.

It lets the bridge's OAuth sign-in run locally and in tests through the same client code
as with a real provider: discovery, the authorization-code flow with PKCE (S256) and a
nonce, client authentication at the token endpoint, RS256 ID tokens checked against the
JWKS, and userinfo. Anyone can sign in by typing a name and an email address; there are no
passwords, and everything (keys, codes, tokens) lives in memory and ends with the process.

Endpoints, under the issuer ``{scheme}://{host}/sandbox/idp`` (taken from each request as
it arrived, so ``http://127.0.0.1:PORT/sandbox/idp`` when the bridge embeds the sandbox;
discovery, the token endpoint and the ID token's ``iss`` all agree as long as the client
reaches them at one host):

``GET /.well-known/openid-configuration``
    The discovery document (OpenID Connect Discovery 1.0).
``GET /jwks``
    The public signing key: RSA 2048, RS256, ``kid`` its RFC 7638 thumbprint. It is made on
    first use and replaced on every restart.
``GET|POST /authorize``
    An authorization request (OIDC Core 3.1.2.1). An unknown ``client_id`` or a
    ``redirect_uri`` not registered for it is shown as an error page (400) and never
    redirected to; any other error goes back to ``redirect_uri`` as ``error`` and ``state``
    (RFC 6749 4.1.2.1). A valid request shows the sign-in page, whose form POSTs back here
    with an opaque handle to the request kept server-side (and bound to a browser cookie);
    signing in redirects with ``code`` and ``state``, cancelling with
    ``error=access_denied``.
``POST /token``
    The authorization-code grant (RFC 6749 4.1.3, RFC 7636 4.6) with ``client_secret_basic``
    or ``client_secret_post``. Codes are single-use and expire after 60 s; presenting a used
    code again also revokes the access tokens issued for it (RFC 6749 4.1.2).
``GET|POST /userinfo``
    The signed-in person's claims, for a bearer access token (RFC 6750 header form).

The subject (``sub``) is derived from the lower-cased email address alone, so the same
person gets the same ``sub`` on every sign-in, for every client and across restarts. The
claims follow the granted scopes: ``profile`` adds ``name``, ``email`` adds ``email`` and
``email_verified`` (always true), in both the ID token and userinfo.

Clients are registered up front (:class:`IdpClient`); unless told otherwise the sandbox
knows one development client, :data:`DEV_CLIENT`. Its redirect URIs are loopback URIs
without a port, which RFC 8252 7.3 lets a request use with any port: it accepts
``http://127.0.0.1:<any port>/oauth/callback``, ``http://localhost:<any port>/oauth/callback``
and ``http://[::1]:<any port>/oauth/callback``, so a bridge on any port can sign in.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit, urlunsplit

from joserfc import jwt
from joserfc.jwk import RSAKey
from quart import Blueprint, Response, current_app, jsonify, request
from werkzeug.datastructures import MultiDict

from bridge.config import SANDBOX_IDP_CLIENT_ID, SANDBOX_IDP_CLIENT_SECRET
from bridge.sandbox.idp.pages import (
    CONTENT_SECURITY_POLICY,
    error_page,
    page_security_policy,
    sign_in_page,
)

IDP_PREFIX = "/sandbox/idp"
STATIC = Path(__file__).parent / "static"

#: The development client the sandbox knows when no clients are given. Local only, so its
#: secret is safe to print and document.
DEV_CLIENT_ID = SANDBOX_IDP_CLIENT_ID
DEV_CLIENT_SECRET = SANDBOX_IDP_CLIENT_SECRET

SCOPES = ("openid", "profile", "email")
CODE_LIFETIME_SECONDS = 60.0
TOKEN_LIFETIME_SECONDS = 3600.0
#: How long a sign-in page stays usable.
SIGN_IN_LIFETIME_SECONDS = 600.0
#: At most this many sign-in pages, codes and tokens are kept; the oldest go first.
MAX_ENTRIES = 10_000

MAX_NAME = 100
MAX_EMAIL = 254
MAX_NONCE = 512
CLAIMS = (
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "name",
    "email",
    "email_verified",
)

#: Parameters that may appear once at most (RFC 6749 3.1, 3.2); unknown ones are ignored.
AUTHORIZE_PARAMETERS = (
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "login_hint",
    "max_age",
    "request",
    "request_uri",
)
TOKEN_PARAMETERS = (
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "client_id",
    "client_secret",
)

BROWSER_COOKIE = "sandbox_idp_browser"
_BROWSER_VALUE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: A name for the subject derivation, so the same email gets the same ``sub`` everywhere.
_SUBJECT_KEY = b"flex-bridge sandbox idp subject"
_REALM = 'realm="sandbox-idp"'


# --- clients ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdpClient:
    """A registered OAuth client: confidential, authenticated with its secret.

    ``redirect_uris`` are compared exactly, with one rule from RFC 8252 7.3: an ``http``
    loopback URI registered without a port (``http://127.0.0.1/cb``, ``http://localhost/cb``,
    ``http://[::1]/cb``) also accepts the same URI with any port.
    """

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.client_id or not self.client_secret:
            raise ValueError("a client needs a client_id and a client_secret")
        if isinstance(self.redirect_uris, str) or not self.redirect_uris:
            raise ValueError("redirect_uris must be a non-empty tuple of URIs")
        for uri in self.redirect_uris:
            parts = urlsplit(uri)
            if not parts.scheme or parts.fragment or "#" in uri:
                raise ValueError(f"a redirect URI must be absolute, without a fragment: {uri!r}")

    def allows_redirect(self, uri: str) -> bool:
        """Whether ``uri`` is one of this client's redirect URIs (see the class docstring)."""
        if uri in self.redirect_uris:
            return True
        portless = _without_loopback_port(uri)
        return portless is not None and portless in self.redirect_uris


def _without_loopback_port(uri: str) -> str | None:
    """``uri`` without its port if it is an http loopback URI with one, else None."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if (
        parts.scheme != "http"
        or port is None
        or not 0 < port < 65536
        or parts.username is not None
        or parts.password is not None
        or parts.fragment
        or parts.hostname not in _LOOPBACK_HOSTS
    ):
        return None
    host = parts.netloc.rsplit(":", 1)[0]
    return urlunsplit(parts._replace(netloc=host))


DEV_CLIENT = IdpClient(
    client_id=DEV_CLIENT_ID,
    client_secret=DEV_CLIENT_SECRET,
    redirect_uris=(
        "http://127.0.0.1/oauth/callback",
        "http://localhost/oauth/callback",
        "http://[::1]/oauth/callback",
    ),
)


# --- errors ----------------------------------------------------------------------------------


class PageError(Exception):
    """Shown to the person as an HTML error page; nothing is redirected."""

    def __init__(self, title: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.title = title
        self.message = message
        self.status = status


class RedirectError(Exception):
    """An authorization error sent back to the client's redirect URI (RFC 6749 4.1.2.1)."""

    def __init__(self, redirect_uri: str, error: str, description: str, state: str | None):
        super().__init__(description)
        self.redirect_uri = redirect_uri
        self.error = error
        self.description = description
        self.state = state


class TokenError(Exception):
    """A token endpoint error (RFC 6749 5.2)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = 401 if error == "invalid_client" else 400


class BearerError(Exception):
    """A refused userinfo request (RFC 6750 3.1); ``error`` is None without a token."""

    def __init__(self, error: str | None, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


# --- records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated authorization request."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str | None
    login_hint: str | None


@dataclass(frozen=True)
class Person:
    sub: str
    name: str
    email: str


@dataclass(frozen=True)
class _SignIn:
    request: AuthorizationRequest
    browser: str  # SHA-256 of the browser cookie
    expires_at: float


@dataclass
class _Grant:
    request: AuthorizationRequest
    person: Person
    auth_time: int
    expires_at: float
    used: bool = False
    access_tokens: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _AccessToken:
    person: Person
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float


def subject_for(email: str) -> str:
    """The ``sub`` for an email address: the same for every sign-in, client and restart."""
    digest = hmac.new(_SUBJECT_KEY, email.strip().lower().encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


# --- the provider ----------------------------------------------------------------------------


class IdentityProvider:
    """The provider's state and rules, independent of HTTP.

    ``clients`` are the registered clients by client_id; None means :data:`DEV_CLIENT`
    alone. ``clock`` (seconds since the epoch) and the lifetimes are there for tests; the
    defaults are what the sandbox serves. The sandbox app keeps its provider in
    ``app.config["SANDBOX_IDP"]``; set another there before serving to change them.
    """

    def __init__(
        self,
        clients: Mapping[str, IdpClient] | None = None,
        *,
        code_lifetime: float = CODE_LIFETIME_SECONDS,
        token_lifetime: float = TOKEN_LIFETIME_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clients: dict[str, IdpClient] = {}
        self.code_lifetime = code_lifetime
        self.token_lifetime = token_lifetime
        self.clock = clock
        self._sign_ins: dict[str, _SignIn] = {}
        self._grants: dict[str, _Grant] = {}
        self._tokens: dict[str, _AccessToken] = {}
        self._key: RSAKey | None = None
        self._key_lock = asyncio.Lock()
        if clients is None:
            clients = {DEV_CLIENT_ID: DEV_CLIENT}
        for client_id, client in clients.items():
            if client_id != client.client_id:
                raise ValueError(f"clients[{client_id!r}] has client_id {client.client_id!r}")
            self.register_client(client)

    def register_client(self, client: IdpClient) -> None:
        """Add (or replace) a client."""
        self.clients[client.client_id] = client

    # --- keys ------------------------------------------------------------------------------

    async def signing_key(self) -> RSAKey:
        """The RS256 key, made on first use (off the event loop: it takes a moment)."""
        if self._key is None:
            async with self._key_lock:
                if self._key is None:
                    self._key = await asyncio.to_thread(_new_key)
        return self._key

    async def jwks(self) -> dict[str, Any]:
        key = await self.signing_key()
        return {"keys": [key.as_dict(private=False)]}

    # --- discovery -------------------------------------------------------------------------

    @staticmethod
    def discovery(issuer: str) -> dict[str, Any]:
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwks",
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": list(CLAIMS),
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
        }

    # --- the authorization endpoint --------------------------------------------------------

    def authorization_request(self, params: MultiDict[str, str]) -> AuthorizationRequest:
        """Validate an authorization request; raises :class:`PageError` for an unknown
        client or redirect URI, :class:`RedirectError` for anything else."""
        for name in ("client_id", "redirect_uri"):
            if len(params.getlist(name)) > 1:
                raise PageError("Invalid sign-in request", f"The request repeats {name}.")
        client_id = params.get("client_id", "")
        client = self.clients.get(client_id)
        if client is None:
            raise PageError(
                "Unknown application",
                f"No application is registered as {client_id!r}."
                if client_id
                else "The request does not say which application it is for (client_id).",
            )
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri:
            raise PageError("Invalid sign-in request", "The request has no redirect_uri.")
        if not client.allows_redirect(redirect_uri):
            raise PageError(
                "Invalid sign-in request",
                f"{redirect_uri!r} is not a redirect URI registered for {client_id!r}.",
            )

        state = params.get("state")

        def fail(error: str, description: str) -> RedirectError:
            return RedirectError(redirect_uri, error, description, state)

        for name in AUTHORIZE_PARAMETERS:
            if len(params.getlist(name)) > 1:
                raise fail("invalid_request", f"The request repeats {name}.")
        if params.get("response_mode", "query") != "query":
            raise fail("invalid_request", "Only response_mode=query is supported.")
        response_type = params.get("response_type")
        if not response_type:
            raise fail("invalid_request", "response_type is missing.")
        if response_type != "code":
            raise fail("unsupported_response_type", "Only response_type=code is supported.")
        if "request" in params:
            raise fail("request_not_supported", "Request objects are not supported.")
        if "request_uri" in params:
            raise fail("request_uri_not_supported", "request_uri is not supported.")
        requested = params.get("scope", "").split()
        if "openid" not in requested:
            raise fail("invalid_scope", "The scope must include openid.")
        # Unknown scope values are ignored (OIDC Core 3.1.2.1).
        scopes = tuple(scope for scope in SCOPES if scope in requested)

        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if challenge is None and method is not None:
            raise fail("invalid_request", "code_challenge_method without code_challenge.")
        if challenge is not None:
            if method != "S256":
                raise fail("invalid_request", "code_challenge_method must be S256.")
            if not _S256_CHALLENGE.match(challenge):
                raise fail("invalid_request", "code_challenge is not a base64url SHA-256 hash.")

        nonce = params.get("nonce")
        if nonce is not None and not 0 < len(nonce) <= MAX_NONCE:
            raise fail("invalid_request", f"nonce must be 1 to {MAX_NONCE} characters long.")
        prompt = params.get("prompt", "").split()
        if "none" in prompt:
            if len(prompt) > 1:
                raise fail("invalid_request", "prompt=none cannot be combined with others.")
            raise fail("login_required", "The sandbox always asks the person to sign in.")

        return AuthorizationRequest(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            state=state,
            nonce=nonce,
            code_challenge=challenge,
            login_hint=params.get("login_hint"),
        )

    def begin_sign_in(self, auth: AuthorizationRequest, browser: str) -> str:
        """Keep ``auth`` for the sign-in form; returns the opaque handle the form posts."""
        now = self.clock()
        self._sweep(now)
        handle = secrets.token_urlsafe(32)
        self._sign_ins[handle] = _SignIn(auth, _digest(browser), now + SIGN_IN_LIFETIME_SECONDS)
        _trim(self._sign_ins)
        return handle

    def pending(self, handle: str, browser: str | None) -> AuthorizationRequest:
        """The request behind a sign-in form, if it is still open in this browser."""
        sign_in = self._sign_ins.get(handle)
        if sign_in is None or sign_in.expires_at <= self.clock():
            raise PageError(
                "This sign-in has expired",
                "This sign-in page has expired or was already used. "
                "Go back to the application and sign in again.",
            )
        if browser is None or not hmac.compare_digest(
            sign_in.browser.encode(), _digest(browser).encode()
        ):
            raise PageError(
                "Sign-in cannot continue",
                "This sign-in page was opened in another browser, or cookies are blocked. "
                "Go back to the application and sign in again.",
            )
        return sign_in.request

    def cancel(self, handle: str) -> AuthorizationRequest:
        return self._sign_ins.pop(handle).request

    def complete_sign_in(self, handle: str, name: str, email: str) -> tuple[str, str]:
        """Sign ``name``/``email`` in for the pending request ``handle``; returns the
        authorization code and the redirect URI."""
        auth = self._sign_ins.pop(handle).request
        now = self.clock()
        code = secrets.token_urlsafe(32)
        self._grants[code] = _Grant(
            request=auth,
            person=Person(subject_for(email), name, email),
            auth_time=int(now),
            expires_at=now + self.code_lifetime,
        )
        _trim(self._grants)
        return code, auth.redirect_uri

    # --- the token endpoint ----------------------------------------------------------------

    async def token(
        self, form: MultiDict[str, str], authorization: str | None, issuer: str
    ) -> dict[str, Any]:
        """Answer a token request or raise :class:`TokenError`."""
        client = self._authenticate(form, authorization)
        for name in TOKEN_PARAMETERS:
            if len(form.getlist(name)) > 1:
                raise TokenError("invalid_request", f"The request repeats {name}.")
        grant_type = form.get("grant_type")
        if not grant_type:
            raise TokenError("invalid_request", "grant_type is missing.")
        if grant_type != "authorization_code":
            raise TokenError("unsupported_grant_type", "Only authorization_code is supported.")
        code = form.get("code")
        if not code:
            raise TokenError("invalid_request", "code is missing.")
        redirect_uri = form.get("redirect_uri")
        if not redirect_uri:
            raise TokenError("invalid_request", "redirect_uri is missing.")

        now = self.clock()
        grant = self._grants.get(code)
        self._sweep(now)
        if grant is None or grant.request.client_id != client.client_id:
            raise TokenError("invalid_grant", "The code is unknown or belongs to another client.")
        if grant.used:
            for token in grant.access_tokens:
                self._tokens.pop(token, None)
            raise TokenError("invalid_grant", "The code was already used.")
        grant.used = True  # any attempt spends it
        if grant.expires_at <= now:
            raise TokenError("invalid_grant", "The code has expired.")
        if redirect_uri != grant.request.redirect_uri:
            raise TokenError("invalid_grant", "redirect_uri differs from the authorize request.")
        verifier = form.get("code_verifier")
        challenge = grant.request.code_challenge
        if challenge is None:
            if verifier is not None:
                raise TokenError("invalid_grant", "code_verifier sent but no code_challenge was.")
        elif verifier is None:
            raise TokenError("invalid_grant", "code_verifier is missing.")
        elif not _VERIFIER.match(verifier) or not hmac.compare_digest(
            _s256(verifier).encode(), challenge.encode()
        ):
            raise TokenError("invalid_grant", "code_verifier does not match the code_challenge.")

        access_token = secrets.token_urlsafe(32)
        auth = grant.request
        self._tokens[access_token] = _AccessToken(
            grant.person, client.client_id, auth.scopes, now + self.token_lifetime
        )
        _trim(self._tokens)
        grant.access_tokens.append(access_token)
        issued = int(now)
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": grant.person.sub,
            "aud": client.client_id,
            "exp": issued + int(self.token_lifetime),
            "iat": issued,
            "auth_time": grant.auth_time,
        }
        if auth.nonce is not None:
            claims["nonce"] = auth.nonce
        claims["at_hash"] = _left_hash(access_token)
        claims.update(_person_claims(grant.person, auth.scopes))
        key = await self.signing_key()
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": int(self.token_lifetime),
            "id_token": id_token,
            "scope": " ".join(auth.scopes),
        }

    def _authenticate(self, form: MultiDict[str, str], authorization: str | None) -> IdpClient:
        scheme, _, credentials = (authorization or "").partition(" ")
        basic = scheme.lower() == "basic"
        if basic and "client_secret" in form:
            raise TokenError("invalid_request", "Use one client authentication method, not two.")
        if basic:
            candidates = _basic_credentials(credentials.strip())
            posted_id = form.get("client_id")
            if posted_id is not None and all(cid != posted_id for cid, _ in candidates):
                raise TokenError("invalid_client", "client_id differs from the credentials.")
        elif "client_secret" in form:
            if len(form.getlist("client_id")) != 1 or len(form.getlist("client_secret")) != 1:
                raise TokenError("invalid_request", "Send client_id and client_secret once each.")
            candidates = [(form["client_id"], form["client_secret"])]
        else:
            raise TokenError(
                "invalid_client",
                "Authenticate the client with client_secret_basic or client_secret_post.",
            )
        for client_id, secret in candidates:
            client = self.clients.get(client_id)
            if client is not None and hmac.compare_digest(
                secret.encode(), client.client_secret.encode()
            ):
                return client
        raise TokenError("invalid_client", "Client authentication failed.")

    # --- userinfo --------------------------------------------------------------------------

    def userinfo(self, authorization: str | None) -> dict[str, Any]:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise BearerError(None, "Send the access token as 'Authorization: Bearer <token>'.")
        access = self._tokens.get(token.strip())
        if access is None or access.expires_at <= self.clock():
            raise BearerError("invalid_token", "The access token is unknown, revoked or expired.")
        return {"sub": access.person.sub, **_person_claims(access.person, access.scopes)}

    # --- housekeeping ----------------------------------------------------------------------

    def _sweep(self, now: float) -> None:
        for handle in [h for h, s in self._sign_ins.items() if s.expires_at <= now]:
            del self._sign_ins[handle]
        # A used code is kept while its tokens live, so using it again can revoke them.
        for code in [
            c
            for c, g in self._grants.items()
            if (g.expires_at + (self.token_lifetime if g.used else 0.0)) <= now
        ]:
            del self._grants[code]
        for token in [t for t, a in self._tokens.items() if a.expires_at <= now]:
            del self._tokens[token]


def _new_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)


def _person_claims(person: Person, scopes: tuple[str, ...]) -> dict[str, Any]:
    claims: dict[str, Any] = {}
    if "profile" in scopes:
        claims["name"] = person.name
    if "email" in scopes:
        claims["email"] = person.email
        claims["email_verified"] = True
    return claims


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _s256(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode()).digest())


def _left_hash(access_token: str) -> str:
    """``at_hash``: the left half of the token's SHA-256 (OIDC Core 3.1.3.6)."""
    return _b64url(hashlib.sha256(access_token.encode()).digest()[:16])


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _basic_credentials(encoded: str) -> list[tuple[str, str]]:
    """``client_id:client_secret`` from a Basic header: form-decoded as RFC 6749 2.3.1
    asks, and as sent, since many clients do not encode."""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise TokenError("invalid_client", "The Basic credentials are malformed.") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise TokenError("invalid_client", "The Basic credentials are malformed.")
    candidates = [(unquote_plus(client_id), unquote_plus(secret))]
    if candidates[0] != (client_id, secret):
        candidates.append((client_id, secret))
    return candidates


def _trim(entries: dict[str, Any]) -> None:
    while len(entries) > MAX_ENTRIES:
        del entries[next(iter(entries))]


def with_query(uri: str, params: Mapping[str, str | None]) -> str:
    """``uri`` with ``params`` added to its query (those that are None left out)."""
    parts = urlsplit(uri)
    extra = urlencode([(k, v) for k, v in params.items() if v is not None])
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


# --- HTTP ------------------------------------------------------------------------------------

idp = Blueprint("idp", __name__, url_prefix=IDP_PREFIX)


def _provider() -> IdentityProvider:
    provider: IdentityProvider = current_app.config["SANDBOX_IDP"]
    return provider


def _redirect(location: str, status: int) -> Response:
    return Response("", status=status, headers={"Location": location})


def issuer_url() -> str:
    """The issuer as this request reached it: ``{scheme}://{host}/sandbox/idp``."""
    return request.root_url.rstrip("/") + IDP_PREFIX


@idp.after_request
async def _security_headers(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    return response


@idp.errorhandler(PageError)
async def _page_error(error: PageError) -> Response:
    response = await error_page(error.title, error.message)
    response.status_code = error.status
    return response


@idp.errorhandler(RedirectError)
async def _redirect_error(error: RedirectError) -> Response:
    location = with_query(
        error.redirect_uri,
        {"error": error.error, "error_description": error.description, "state": error.state},
    )
    return _redirect(location, 303 if request.method == "POST" else 302)


@idp.errorhandler(TokenError)
async def _token_error(error: TokenError) -> Response:
    response = jsonify({"error": error.error, "error_description": error.description})
    response.status_code = error.status
    response.headers["Pragma"] = "no-cache"
    if error.status == 401:
        response.headers["WWW-Authenticate"] = f"Basic {_REALM}"
    return response


@idp.errorhandler(BearerError)
async def _bearer_error(error: BearerError) -> Response:
    challenge = f"Bearer {_REALM}"
    body: dict[str, str] = {"error_description": error.description}
    if error.error is not None:
        challenge += f', error="{error.error}", error_description="{error.description}"'
        body = {"error": error.error, **body}
    response = jsonify(body)
    response.status_code = 401
    response.headers["WWW-Authenticate"] = challenge
    return response


@idp.get("/.well-known/openid-configuration")
async def discovery() -> Response:
    response = jsonify(IdentityProvider.discovery(issuer_url()))
    response.headers["Cache-Control"] = "no-cache"
    return response


@idp.get("/jwks")
async def jwks() -> Response:
    response = jsonify(await _provider().jwks())
    response.headers["Cache-Control"] = "no-cache"
    return response


@idp.get("/idp.css")
async def stylesheet() -> Response:
    # Read whole (it is small): a streamed file is left open if the client stops reading.
    css = (STATIC / "idp.css").read_bytes()
    response = Response(css, content_type="text/css; charset=utf-8")
    response.headers["Cache-Control"] = "no-cache"
    return response


@idp.route("/authorize", methods=["GET", "POST"])
async def authorize() -> Response:
    provider = _provider()
    if request.method == "POST":
        form = await request.form
        if "handle" in form:
            return await _submit(provider, form)
        params: MultiDict[str, str] = form
    else:
        params = request.args
    auth = provider.authorization_request(params)
    browser = request.cookies.get(BROWSER_COOKIE, "")
    if not _BROWSER_VALUE.match(browser):
        browser = secrets.token_urlsafe(32)
    handle = provider.begin_sign_in(auth, browser)
    hint = auth.login_hint or ""
    response = await _sign_in_page(auth, handle, "", hint if _EMAIL.match(hint) else "", {})
    response.set_cookie(
        BROWSER_COOKIE,
        browser,
        max_age=int(SIGN_IN_LIFETIME_SECONDS),
        path=IDP_PREFIX,
        secure=request.scheme == "https",
        httponly=True,
        samesite="Lax",
    )
    return response


async def _submit(provider: IdentityProvider, form: MultiDict[str, str]) -> Response:
    handle = form.get("handle", "")
    auth = provider.pending(handle, request.cookies.get(BROWSER_COOKIE))
    if form.get("action") == "cancel":
        provider.cancel(handle)
        raise RedirectError(
            auth.redirect_uri, "access_denied", "The person cancelled the sign-in.", auth.state
        )
    name = " ".join(form.get("name", "").split())
    email = form.get("email", "").strip()
    errors = person_errors(name, email)
    if errors:
        response = await _sign_in_page(auth, handle, name, email, errors)
        response.status_code = 400
        return response
    code, redirect_uri = provider.complete_sign_in(handle, name, email)
    return _redirect(with_query(redirect_uri, {"code": code, "state": auth.state}), 303)


async def _sign_in_page(
    auth: AuthorizationRequest, handle: str, name: str, email: str, errors: dict[str, str]
) -> Response:
    response = await sign_in_page(
        client_id=auth.client_id,
        scopes=auth.scopes,
        handle=handle,
        name=name,
        email=email,
        errors=errors,
        max_name=MAX_NAME,
        max_email=MAX_EMAIL,
    )
    response.headers["Content-Security-Policy"] = page_security_policy(auth.redirect_uri)
    return response


def person_errors(name: str, email: str) -> dict[str, str]:
    """What is wrong with a typed name and email, by field (empty when both are fine)."""
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Type a name."
    elif len(name) > MAX_NAME or _CONTROL.search(name):
        errors["name"] = f"A name is at most {MAX_NAME} printable characters."
    if not email:
        errors["email"] = "Type an email address."
    elif len(email) > MAX_EMAIL or not _EMAIL.match(email):
        errors["email"] = "Type an email address like name@example.com."
    return errors


@idp.post("/token")
async def token() -> Response:
    if request.mimetype != "application/x-www-form-urlencoded":
        raise TokenError("invalid_request", "Send the parameters form-encoded in the body.")
    form = await request.form
    answer = await _provider().token(form, request.headers.get("Authorization"), issuer_url())
    response = jsonify(answer)
    response.headers["Pragma"] = "no-cache"
    return response


@idp.route("/userinfo", methods=["GET", "POST"])
async def userinfo() -> Response:
    return jsonify(_provider().userinfo(request.headers.get("Authorization")))
