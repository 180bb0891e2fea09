"""What assistants read: manifest, OpenAPI contract, logo, legal text."""

from __future__ import annotations

import httpx
import pytest
import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from tests.conftest import LiveServer, ServerFactory

PUBLIC = "https://bridge-demo.ngrok.app"


@pytest.fixture
def public_server(make_server: ServerFactory) -> LiveServer:
    return make_server(PUBLIC_URL=PUBLIC)


def test_manifest_carries_public_url(public_server: LiveServer) -> None:
    response = httpx.get(f"{public_server.url}/.well-known/ai-plugin.json")
    assert response.headers["content-type"].startswith("application/json")
    manifest = response.json()
    assert manifest["api"] == {
        "type": "openapi",
        "url": f"{PUBLIC}/openapi.yaml",
        "is_user_authenticated": False,
    }
    assert manifest["logo_url"] == f"{PUBLIC}/logo.png"
    assert manifest["legal_info_url"] == f"{PUBLIC}/legal"
    assert manifest["auth"] == {"type": "none"}


@pytest.mark.parametrize("path", ["/openapi.yaml", "/openapi.json"])
def test_openapi_is_valid_31_with_public_url(public_server: LiveServer, path: str) -> None:
    response = httpx.get(f"{public_server.url}{path}")
    kind = "yaml" if path.endswith("yaml") else "json"
    assert kind in response.headers["content-type"]
    document = yaml.safe_load(response.text) if kind == "yaml" else response.json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": PUBLIC}]
    operations = {
        op["operationId"]: op
        for item in document["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert set(operations) == {"sendMessage", "getReplies", "endConversation", "chooseNextStep"}
    for operation in operations.values():
        assert operation["x-openai-isConsequential"] is False
        assert 0 < len(operation["description"]) < 300


def test_validator_would_catch_a_broken_document() -> None:
    with pytest.raises(OpenAPIValidationError):
        validate(
            {"openapi": "3.1.0", "info": {"title": "x"}, "paths": {"/a": {"get": {"responses": 1}}}}
        )


def test_logo_legal_and_health(server: LiveServer) -> None:
    logo = httpx.get(f"{server.url}/logo.png")
    assert logo.headers["content-type"] == "image/png"
    assert logo.content.startswith(b"\x89PNG\r\n\x1a\n")
    legal = httpx.get(f"{server.url}/legal")
    assert legal.headers["content-type"].startswith("text/plain")
    assert "privacy" in legal.text.lower()
    health = httpx.get(f"{server.url}/healthz")
    assert health.json() == {"status": "ok"}
