"""Files assistants read: the plugin manifest, the OpenAPI contract, logo and legal text."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from quart import Blueprint, Response

from bridge.services import services

assistant = Blueprint("assistant", __name__)

#: The repository root, where the assistant-facing files live (see README, "Layout").
ASSET_ROOT = Path(__file__).resolve().parents[2]


@cache
def _openapi_template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ASSET_ROOT / "openapi.yaml").read_text("utf-8"))
    return loaded


@cache
def _manifest_template() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (ASSET_ROOT / ".well-known" / "ai-plugin.json").read_text("utf-8")
    )
    return loaded


def openapi_document(public_url: str) -> dict[str, Any]:
    """The OpenAPI contract with ``servers`` set to PUBLIC_URL."""
    document = copy.deepcopy(_openapi_template())
    document["servers"] = [{"url": public_url}]
    return document


def manifest_document(public_url: str) -> dict[str, Any]:
    document = copy.deepcopy(_manifest_template())
    document["api"]["url"] = f"{public_url}/openapi.yaml"
    document["logo_url"] = f"{public_url}/logo.png"
    document["legal_info_url"] = f"{public_url}/legal"
    return document


@assistant.get("/.well-known/ai-plugin.json")
async def ai_plugin() -> dict[str, Any]:
    return manifest_document(services().settings.public_url)


@assistant.get("/openapi.yaml")
async def openapi_yaml() -> Response:
    text = yaml.safe_dump(
        openapi_document(services().settings.public_url), sort_keys=False, allow_unicode=True
    )
    return Response(text, content_type="application/yaml; charset=utf-8")


@assistant.get("/openapi.json")
async def openapi_json() -> dict[str, Any]:
    return openapi_document(services().settings.public_url)


@assistant.get("/logo.png")
async def logo() -> Response:
    response = Response((ASSET_ROOT / "logo.png").read_bytes(), content_type="image/png")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@assistant.get("/legal")
async def legal() -> Response:
    return Response(
        (ASSET_ROOT / "legal.txt").read_text("utf-8"), content_type="text/plain; charset=utf-8"
    )


@assistant.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
