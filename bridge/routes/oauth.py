"""The OAuth 2.0 endpoints and metadata (registered in AUTH_MODE=oauth only)."""

from __future__ import annotations

import base64
from urllib.parse import quote

from quart import Blueprint, Response, abort, jsonify, request

from bridge.auth.results import ConsentPage, ErrorPage, Redirect, TokenResponse
from bridge.auth.server import AuthorizationServer
from bridge.auth.sign_in import SIGN_IN_SECONDS
from bridge.auth.store import hash_secret
from bridge.config import SANDBOX_OAUTH_CLIENT_SECRET, SANDBOX_SIGNED_IN_PATH
from bridge.request_body import json_or_none
from bridge.routes import services
from bridge.routes.oauth_pages import consent_page, error_page, exchange_page, signed_in_page

oauth_routes = Blueprint("oauth", __name__)


def _server() -> AuthorizationServer:
    server = services().oauth
    assert server is not None
    return server


def _cookie_name() -> str:
    """The browser's sign-in cookie: ``__Host-`` (https only, whole site, no Domain) when
    PUBLIC_URL is https; a plain name over http (a local sandbox)."""
    secure = services().settings.public_url.startswith("https://")
    return "__Host-flexbridge-signin" if secure else "flexbridge-signin"


def _browser() -> str | None:
    return request.cookies.get(_cookie_name())


def _answer(result: ErrorPage | Redirect | ConsentPage) -> Response:
    if isinstance(result, ErrorPage):
        return error_page(result)
    if isinstance(result, ConsentPage):
        return consent_page(result)
    response = Response("", status=302)
    response.headers["Location"] = result.url
    response.headers["Cache-Control"] = "no-store"
    if result.browser is not None:
        response.set_cookie(
            _cookie_name(),
            result.browser,
            max_age=SIGN_IN_SECONDS,
            path="/",
            secure=_cookie_name().startswith("__Host-"),
            httponly=True,
            samesite="Lax",  # sent on the provider's redirect back here (a top-level GET)
        )
    return response


def _json(result: TokenResponse) -> Response:
    response = jsonify(result.body)
    response.status_code = result.status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    if result.www_authenticate:
        response.headers["WWW-Authenticate"] = result.www_authenticate
    if result.retry_after is not None:
        response.headers["Retry-After"] = str(result.retry_after)
    return response


@oauth_routes.get("/oauth/authorize")
async def authorize() -> Response:
    params = request.args.to_dict(flat=True)
    return _answer(await _server().sign_in.authorize(params, _browser(), _requester()))


@oauth_routes.get("/oauth/callback")
async def callback() -> Response:
    return _answer(await _server().sign_in.callback(request.args.to_dict(flat=True), _browser()))


@oauth_routes.post("/oauth/consent")
async def consent() -> Response:
    form = (await request.form).to_dict(flat=True)
    origin = request.headers.get("Origin")
    return _answer(await _server().sign_in.consent(form, _browser(), origin))


@oauth_routes.post("/oauth/token")
async def token() -> Response:
    """Form or JSON bodies: GPT Actions may send either."""
    if request.mimetype == "application/json":
        body = await json_or_none()
        if not isinstance(body, dict):
            return _json(
                TokenResponse(
                    400,
                    {
                        "error": "invalid_request",
                        "error_description": "The body must be a JSON object of text (or a form).",
                    },
                )
            )
        fields = {k: str(v) for k, v in body.items()}
    else:
        fields = (await request.form).to_dict(flat=True)
    return _json(await _server().token(fields, request.headers.get("Authorization", "")))


@oauth_routes.post("/oauth/register")
async def register() -> Response:
    """Dynamic client registration (RFC 7591), as MCP clients such as ChatGPT and Claude use."""
    body = await json_or_none()
    return _json(await _server().clients.register(body, _requester()))


@oauth_routes.get("/.well-known/oauth-authorization-server")
async def server_metadata() -> Response:
    return jsonify(_server().server_metadata())


@oauth_routes.get("/.well-known/oauth-protected-resource")
@oauth_routes.get("/.well-known/oauth-protected-resource/mcp")
async def resource_metadata() -> Response:
    return jsonify(_server().resource_metadata())


def _requester() -> str:
    """Who asks, for the sign-in and registration rate limits: the peer's address (behind
    a proxy, the proxy's: the overall limit still holds)."""
    return request.remote_addr or "unknown"


@oauth_routes.get(SANDBOX_SIGNED_IN_PATH)
async def signed_in() -> Response:
    """In the sandbox: where the dev client's authorization (the banner's link) lands. The
    code is exchanged here, as the assistant would, when the dev client's secret is the
    sandbox's documented one; otherwise the page shows the call that exchanges it."""
    wired = services()
    settings = wired.settings
    if not settings.sandbox:
        abort(404)
    if "error" in request.args or "code" not in request.args:
        return error_page(
            ErrorPage(f"Not signed in: {request.args.get('error', 'no code came back')}.")
        )
    url = settings.public_url
    auth = settings.auth
    form = {
        "grant_type": "authorization_code",
        "code": request.args["code"],
        "redirect_uri": f"{url}{SANDBOX_SIGNED_IN_PATH}",
    }
    if auth.oauth_client_secret_hash != hash_secret(SANDBOX_OAUTH_CLIENT_SECRET):
        call = (
            f"curl -s -u {auth.oauth_client_id}:YOUR_CLIENT_SECRET {url}/oauth/token "
            + " ".join(f"-d {key}={quote(value, safe='')}" for key, value in form.items())
        )
        return exchange_page(auth.oauth_client_id, call)
    credentials = f"{auth.oauth_client_id}:{SANDBOX_OAUTH_CLIENT_SECRET}".encode()
    answer = await _server().token(form, "Basic " + base64.b64encode(credentials).decode())
    if answer.status != 200:
        return error_page(ErrorPage(f"The code was refused: {answer.body.get('error')}."))
    token = str(answer.body["access_token"])
    call = (
        f"curl -s -X POST {url}/send/me -H 'Authorization: Bearer {token}' \\\n"
        "     -H 'Content-Type: application/json' -d '{\"msg\": \"I need a human, please\"}'"
    )
    return signed_in_page(token, auth.access_token_seconds // 60, call)
