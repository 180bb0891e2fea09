"""Files assistants read: the plugin manifest, the OpenAPI contract, logo and legal text."""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

import yaml
from quart import Blueprint, Response

from bridge.config import Settings
from bridge.routes import services
from bridge.routes.home import wants_html

assistant = Blueprint("assistant", __name__)

#: The assistant-facing files, read from the installed package (bridge/assets/).
ASSETS = resources.files("bridge.assets")


@cache
def _openapi_template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ASSETS.joinpath("openapi.yaml").read_text("utf-8"))
    return loaded


@cache
def _manifest_template() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(ASSETS.joinpath("ai-plugin.json").read_text("utf-8"))
    return loaded


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI contract: ``servers`` is PUBLIC_URL, security follows AUTH_MODE."""
    document = copy.deepcopy(_openapi_template())
    url = settings.public_url
    document["servers"] = [{"url": url}]
    auth = settings.auth
    schemes: dict[str, Any] = {}
    if auth.mode == "apikey":
        schemes = {
            "bearerKey": {"type": "http", "scheme": "bearer"},
            "headerKey": {"type": "apiKey", "in": "header", "name": auth.api_key_header},
        }
        document["security"] = [{"bearerKey": []}, {"headerKey": []}]
    elif auth.mode == "oauth":
        schemes = {
            "oauth2": {
                "type": "oauth2",
                "flows": {
                    "authorizationCode": {
                        "authorizationUrl": f"{url}/oauth/authorize",
                        "tokenUrl": f"{url}/oauth/token",
                        "refreshUrl": f"{url}/oauth/token",
                        "scopes": {auth.scope: "Talk to a human agent on the user's behalf."},
                    }
                },
            }
        }
        document["security"] = [{"oauth2": [auth.scope]}]
        username = document["components"]["parameters"]["username"]
        username["description"] = (
            "Any value, e.g. 'me': the user is the one who signed in, whatever this says."
        )
    if schemes:
        document["components"]["securitySchemes"] = schemes
        # Every operation then answers 401 to missing or wrong credentials.
        for path in document["paths"].values():
            for operation in path.values():
                operation["responses"]["401"] = {"$ref": "#/components/responses/Error"}
    return document


def manifest_document(settings: Settings) -> dict[str, Any]:
    url = settings.public_url
    document = copy.deepcopy(_manifest_template())
    document["api"]["url"] = f"{url}/openapi.yaml"
    document["logo_url"] = f"{url}/logo.png"
    document["legal_info_url"] = f"{url}/legal"
    auth = settings.auth
    if auth.mode == "apikey":
        document["auth"] = {
            "type": "service_http",
            "authorization_type": "bearer",
            "verification_tokens": {},
        }
    elif auth.mode == "oauth":
        document["auth"] = {
            "type": "oauth",
            "client_url": f"{url}/oauth/authorize",
            "authorization_url": f"{url}/oauth/token",
            "scope": auth.scope,
            "authorization_content_type": "application/x-www-form-urlencoded",
            "verification_tokens": {},
        }
        document["api"]["is_user_authenticated"] = True
    return document


@assistant.get("/.well-known/ai-plugin.json")
async def ai_plugin() -> dict[str, Any]:
    return manifest_document(services().settings)


@assistant.get("/openapi.yaml")
async def openapi_yaml() -> Response:
    text = yaml.safe_dump(
        openapi_document(services().settings), sort_keys=False, allow_unicode=True
    )
    # A browser shows text/plain (it saves application/yaml as a file); clients get YAML.
    kind = "text/plain" if wants_html() else "application/yaml"
    response = Response(text, content_type=f"{kind}; charset=utf-8")
    response.headers["Content-Disposition"] = 'inline; filename="openapi.yaml"'
    response.headers["Vary"] = "Accept"
    return response


@assistant.get("/openapi.json")
async def openapi_json() -> dict[str, Any]:
    return openapi_document(services().settings)


@assistant.get("/logo.png")
async def logo() -> Response:
    response = Response(ASSETS.joinpath("logo.png").read_bytes(), content_type="image/png")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@assistant.get("/legal")
async def legal() -> Response:
    return Response(
        ASSETS.joinpath("legal.txt").read_text("utf-8"), content_type="text/plain; charset=utf-8"
    )
