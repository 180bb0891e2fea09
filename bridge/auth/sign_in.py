"""The browser's part of OAuth: the authorization endpoint, the upstream provider's
callback, and the bridge's own consent page.

Defences (each has a test):
- every sign-in is bound to the browser that started it (a cookie whose hash the pending
  sign-in keeps): the callback and the consent answer must come from that browser;
- a client the operator has not vetted gets the bridge's consent page after the person
  signed in (who they are, the client's name, where it sends them back, what it may do),
  asked once per person and client; its errors are pages, never redirects to it, so the
  bridge cannot be used to send someone to an unvetted address;
- redirect URIs match exactly (a registered client's) or fully (the GPT client's
  patterns); parameters are bounded in size; sign-ins started are rate-limited, and
  abandoned ones expire.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from bridge.auth import store
from bridge.auth.clients import OVERALL_FACTOR, Clients
from bridge.auth.constant_time import same_secret
from bridge.auth.oidc import OidcProvider, UpstreamError, VerifiedUser
from bridge.auth.results import ConsentPage, ErrorPage, Redirect, with_query
from bridge.auth.store import OAuthStore
from bridge.config import AuthSettings
from bridge.coordination import RateLimits

SIGN_IN_SECONDS = 600  # how long a person has to sign in upstream and answer the consent page
MAX_STATE_CHARS = 512
_BROWSER = re.compile(r"[A-Za-z0-9_-]{32}")
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # S256: Base64url of 32 bytes, unpadded


def _profile(user: VerifiedUser) -> str:
    return json.dumps({"name": user.name, "email": user.email})


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class SignIn:
    def __init__(
        self,
        oauth_store: OAuthStore,
        settings: AuthSettings,
        clients: Clients,
        upstream: OidcProvider,
        rate_limits: RateLimits,
        *,
        issuer: str,
        resource_of: Callable[[str], str | None],
    ) -> None:
        self._store = oauth_store
        self._settings = settings
        self._clients = clients
        self.upstream = upstream
        self._rate_limits = rate_limits
        self._issuer = issuer
        self._resource_of = resource_of

    # --- GET /oauth/authorize -------------------------------------------------------------

    async def authorize(
        self, params: Mapping[str, str], browser: str | None, requester: str
    ) -> ErrorPage | Redirect:
        """Check the request, then send the person to sign in upstream."""
        per_minute = self._settings.authorize_per_minute
        wait = max(
            await self._rate_limits.take(f"oauth-authorize:{requester}", per_minute),
            await self._rate_limits.take("oauth-authorize", per_minute * OVERALL_FACTOR),
        )
        if wait:
            return ErrorPage(
                "Too many sign-ins were started from here; wait a minute and try again.",
                429,
                retry_after=max(1, int(wait) + 1),
            )
        client = await self._clients.find(params.get("client_id", ""))
        if client is None:
            return ErrorPage("This sign-in link names an unknown client (client_id).")
        redirect_uri = params.get("redirect_uri", "")
        if not self._clients.redirect_allowed(client, redirect_uri):
            return ErrorPage("This sign-in link's redirect_uri is not on the allow-list.")
        state = params.get("state", "")
        too_long = len(state) > MAX_STATE_CHARS
        if too_long:
            state = ""  # not echoed back

        def error(code: str, description: str) -> ErrorPage | Redirect:
            if not client.trusted:  # never send anyone to an address nobody vetted
                return ErrorPage(f"This sign-in link is not valid: {description}")
            reply = {"error": code, "error_description": description, "iss": self._issuer}
            if state:
                reply["state"] = state
            return Redirect(with_query(redirect_uri, reply))

        if params.get("response_type") != "code":
            return error("unsupported_response_type", "Only response_type=code is supported.")
        if too_long:
            return error("invalid_request", f"state must be at most {MAX_STATE_CHARS} characters.")
        if not state:
            return error("invalid_request", "The state parameter is required.")
        if any(s != self._settings.scope for s in params.get("scope", "").split()):
            return error("invalid_scope", f"The only scope is {self._settings.scope!r}.")
        challenge = params.get("code_challenge") or None
        if challenge and (
            params.get("code_challenge_method", "plain") != "S256"
            or not _CHALLENGE.fullmatch(challenge)
        ):
            return error("invalid_request", "code_challenge must be an S256 challenge.")
        if client.public and not challenge:
            return error("invalid_request", "PKCE is required: send an S256 code_challenge.")
        asked = params.get("resource") or None
        resource = self._resource_of(asked) if asked else None
        if asked and resource is None:
            return error("invalid_target", f"Unknown resource; use {self._issuer}/mcp.")
        now = time.time()
        await self._store.purge_abandoned(now - SIGN_IN_SECONDS)
        # One cookie per browser, kept across sign-ins, so two tabs do not undo each other.
        browser = browser if browser and _BROWSER.fullmatch(browser) else secrets.token_urlsafe(24)
        pending = store.PendingSignIn(
            upstream_state=secrets.token_urlsafe(24),
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            state=state,
            scope=self._settings.scope,
            nonce=secrets.token_urlsafe(24),
            code_verifier=secrets.token_urlsafe(48),
            code_challenge=challenge,
            resource=resource,
            created_at=now,
            browser_hash=store.hash_secret(browser),
        )
        try:
            url = await self.upstream.authorization_url(
                pending.upstream_state, pending.nonce, pending.code_verifier
            )
        except UpstreamError:
            return error("temporarily_unavailable", "The sign-in provider cannot be reached.")
        await self._store.save_pending(pending)
        return Redirect(url, browser=browser)

    # --- GET /oauth/callback --------------------------------------------------------------

    async def callback(
        self, params: Mapping[str, str], browser: str | None
    ) -> ErrorPage | Redirect | ConsentPage:
        """The upstream provider sends the person back here, signed in (or not)."""
        pending = await self._store.take_pending(params.get("state", ""), SIGN_IN_SECONDS)
        if pending is None:
            return ErrorPage("This sign-in has expired or was already used; start again.")
        if not _same_browser(browser, pending.browser_hash):
            return ErrorPage(
                "This sign-in was started in another browser, or cookies are blocked; start "
                "again from the assistant, in this browser."
            )
        client = await self._clients.find(pending.client_id)
        if client is None:
            return ErrorPage("The application that asked for this sign-in is no longer known.")

        def back(reply: dict[str, str]) -> Redirect:
            reply.update({"state": pending.state, "iss": self._issuer})
            return Redirect(with_query(pending.redirect_uri, reply))

        if params.get("error") or not params.get("code"):
            if not client.trusted:
                return ErrorPage("Sign-in was declined.")
            return back({"error": "access_denied", "error_description": "Sign-in was declined."})
        try:
            user = await self.upstream.sign_in(params["code"], pending.code_verifier, pending.nonce)
        except UpstreamError:
            if not client.trusted:
                return ErrorPage("Sign-in failed at the sign-in provider; try again later.")
            return back({"error": "server_error", "error_description": "Sign-in failed."})
        grant = store.Grant(pending.client_id, user.subject, pending.scope, _profile(user))
        if client.trusted or await self._store.has_consent(user.subject, client.client_id):
            code = await self._issue_code(
                grant, pending.redirect_uri, pending.code_challenge, pending.resource
            )
            return back({"code": code})
        token = secrets.token_urlsafe(32)
        await self._store.save_consent_request(
            store.ConsentRequest(
                consent_hash=store.hash_secret(token),
                browser_hash=pending.browser_hash,
                client_id=client.client_id,
                redirect_uri=pending.redirect_uri,
                state=pending.state,
                scope=pending.scope,
                subject=user.subject,
                profile=grant.profile,
                code_challenge=pending.code_challenge,
                resource=pending.resource,
                created_at=time.time(),
            )
        )
        return ConsentPage(
            client_name=client.name or "An application",
            redirect_uri=pending.redirect_uri,
            redirect_origin=_origin(pending.redirect_uri),
            user_name=user.name,
            user_email=user.email,
            token=token,
        )

    # --- POST /oauth/consent --------------------------------------------------------------

    async def consent(
        self, form: Mapping[str, str], browser: str | None, origin: str | None
    ) -> ErrorPage | Redirect:
        """The person's answer on the consent page."""
        if origin is not None and origin != _origin(self._issuer):
            return ErrorPage("This answer did not come from the consent page.", 403)
        request = await self._store.take_consent_request(
            store.hash_secret(form.get("consent", "")), time.time() - SIGN_IN_SECONDS
        )
        if request is None:
            return ErrorPage("This consent page has expired or was already answered; start again.")
        if not _same_browser(browser, request.browser_hash):
            return ErrorPage(
                "This consent page was opened in another browser, or cookies are blocked.", 403
            )

        def back(reply: dict[str, str]) -> Redirect:
            reply.update({"state": request.state, "iss": self._issuer})
            return Redirect(with_query(request.redirect_uri, reply))

        decision = form.get("decision")
        if decision == "deny":
            return back({"error": "access_denied", "error_description": "The person said no."})
        if decision != "allow":
            return ErrorPage("Choose Allow or Deny on the consent page.")
        await self._store.save_consent(request.subject, request.client_id)
        grant = store.Grant(request.client_id, request.subject, request.scope, request.profile)
        code = await self._issue_code(
            grant, request.redirect_uri, request.code_challenge, request.resource
        )
        return back({"code": code})

    async def _issue_code(
        self,
        grant: store.Grant,
        redirect_uri: str,
        code_challenge: str | None,
        resource: str | None,
    ) -> str:
        code = store.new_secret()
        await self._store.save_code(
            store.CodeRow(
                client_id=grant.client_id,
                subject=grant.subject,
                scope=grant.scope,
                profile=grant.profile,
                code_hash=store.hash_secret(code),
                redirect_uri=redirect_uri,
                code_challenge=code_challenge,
                resource=resource,
                expires_at=time.time() + self._settings.code_seconds,
                used_at=None,
            )
        )
        return code


def _same_browser(browser: str | None, expected_hash: str) -> bool:
    return (
        bool(browser)
        and bool(expected_hash)
        and same_secret(store.hash_secret(browser or ""), expected_hash)
    )
