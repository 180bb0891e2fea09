"""The OAuth 2.0 endpoints and metadata (registered in AUTH_MODE=oauth only)."""

from __future__ import annotations

from markupsafe import escape
from quart import Blueprint, Response, jsonify, request

from bridge.auth.server import AuthorizationServer, ErrorPage, Redirect, TokenResponse
from bridge.request_body import json_or_none
from bridge.routes import services

oauth_routes = Blueprint("oauth", __name__)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in problem</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 3rem auto;">
<h1>Sign-in could not start</h1><p>{message}</p>
<p>Go back to the assistant and try connecting again.</p></body></html>"""


def _server() -> AuthorizationServer:
    server = services().oauth
    assert server is not None
    return server


def _answer(result: ErrorPage | Redirect) -> Response:
    if isinstance(result, Redirect):
        response = Response("", status=302)
        response.headers["Location"] = result.url
        response.headers["Cache-Control"] = "no-store"
        return response
    page = Response(
        _PAGE.format(message=escape(result.message)),
        status=400,
        content_type="text/html; charset=utf-8",
    )
    page.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    page.headers["X-Content-Type-Options"] = "nosniff"
    page.headers["Referrer-Policy"] = "no-referrer"
    return page


@oauth_routes.get("/oauth/authorize")
async def authorize() -> Response:
    return _answer(await _server().authorize(request.args.to_dict(flat=True)))


@oauth_routes.get("/oauth/callback")
async def callback() -> Response:
    return _answer(await _server().callback(request.args.to_dict(flat=True)))


@oauth_routes.post("/oauth/token")
async def token() -> Response:
    """Form or JSON bodies: GPT Actions may send either."""
    if request.mimetype == "application/json":
        body = await json_or_none()
        fields = {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}
    else:
        fields = (await request.form).to_dict(flat=True)
    result: TokenResponse = await _server().token(fields, request.headers.get("Authorization", ""))
    response = jsonify(result.body)
    response.status_code = result.status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    if result.www_authenticate:
        response.headers["WWW-Authenticate"] = result.www_authenticate
    return response


@oauth_routes.post("/oauth/register")
async def register() -> Response:
    """Dynamic client registration (RFC 7591), as MCP clients such as ChatGPT and Claude use."""
    body = await json_or_none()
    result = await _server().register(body)
    response = jsonify(result.body)
    response.status_code = result.status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@oauth_routes.get("/.well-known/oauth-authorization-server")
async def server_metadata() -> Response:
    return jsonify(_server().server_metadata())


@oauth_routes.get("/.well-known/oauth-protected-resource")
@oauth_routes.get("/.well-known/oauth-protected-resource/mcp")
async def resource_metadata() -> Response:
    return jsonify(_server().resource_metadata())
