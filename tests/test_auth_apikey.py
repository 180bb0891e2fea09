"""AUTH_MODE=apikey: keys the three ways GPT Actions send them; nothing without one."""

from __future__ import annotations

import base64

import httpx
import pytest

from bridge.app import create_app
from bridge.config import ConfigError, load_settings
from tests.conftest import LiveServer, ServerFactory

KEY = "k-0123456789abcdef-first"
OTHER_KEY = "k-fedcba9876543210-second"


@pytest.fixture
def keyed(make_server: ServerFactory) -> LiveServer:
    return make_server(
        AUTH_MODE="apikey", API_KEYS=f"{KEY}, {OTHER_KEY}", API_KEY_HEADER="X-Bridge-Key"
    )


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {KEY}"},
        {"Authorization": f"Bearer {OTHER_KEY}"},
        {"Authorization": basic("gpt", KEY)},
        {"Authorization": basic(KEY, "")},
        {"X-Bridge-Key": KEY},
    ],
    ids=["bearer", "second-key", "basic-password", "basic-user", "custom-header"],
)
def test_accepted_ways(keyed: LiveServer, headers: dict[str, str]) -> None:
    response = httpx.post(f"{keyed.url}/send/ada", json={"msg": "hi"}, headers=headers, timeout=30)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key-wrong-key"},
        {"Authorization": f"Bearer {KEY}x"},
        {"Authorization": basic("gpt", "nope")},
        {"Authorization": "Basic !!!not-base64"},
        {"X-API-Key": KEY},  # not the configured header
        {"X-Bridge-Key": KEY[:-1]},
    ],
)
def test_refused(keyed: LiveServer, headers: dict[str, str]) -> None:
    response = httpx.post(f"{keyed.url}/send/ada", json={"msg": "hi"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_every_handoff_route_demands_a_key(keyed: LiveServer) -> None:
    app = create_app(keyed.settings)
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("handoff.")]
    assert len(rules) >= 3
    for rule in rules:
        path = rule.rule.replace("<username>", "ada")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            response = httpx.request(method, f"{keyed.url}{path}", json={"msg": "hi"})
            assert response.status_code == 401, (method, path)


def test_manifest_and_openapi_follow_the_mode(keyed: LiveServer) -> None:
    manifest = httpx.get(f"{keyed.url}/.well-known/ai-plugin.json").json()
    assert manifest["auth"] == {
        "type": "service_http",
        "authorization_type": "bearer",
        "verification_tokens": {},
    }
    document = httpx.get(f"{keyed.url}/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerKey"] == {"type": "http", "scheme": "bearer"}
    assert schemes["headerKey"] == {"type": "apiKey", "in": "header", "name": "X-Bridge-Key"}
    assert document["security"] == [{"bearerKey": []}, {"headerKey": []}]
    for path in document["paths"].values():
        for operation in path.values():
            assert "401" in operation["responses"], operation["operationId"]


def test_public_files_need_no_key(keyed: LiveServer) -> None:
    for path in ("/healthz", "/openapi.yaml", "/logo.png", "/legal", "/.well-known/ai-plugin.json"):
        assert httpx.get(f"{keyed.url}{path}").status_code == 200, path


def test_apikey_mode_needs_keys() -> None:
    with pytest.raises(ConfigError, match="API_KEYS"):
        load_settings({"AUTH_MODE": "apikey"})
    with pytest.raises(ConfigError, match="API_KEYS"):
        load_settings({"AUTH_MODE": "apikey", "API_KEYS": "short"})


def test_rate_limit_per_identity(make_server: ServerFactory) -> None:
    server = make_server(RATE_LIMIT_PER_MINUTE="2")
    statuses = [
        httpx.post(f"{server.url}/send/ada", json={"msg": f"m{n}"}, timeout=30).status_code
        for n in range(3)
    ]
    assert statuses == [200, 200, 429]
    limited = httpx.post(f"{server.url}/send/ada", json={"msg": "again"}, timeout=30)
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    # Another user is not slowed down by Ada.
    assert httpx.post(f"{server.url}/send/bob", json={"msg": "hi"}, timeout=30).status_code == 200
