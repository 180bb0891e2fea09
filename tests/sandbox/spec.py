"""Validation of emulator responses against Twilio's own OpenAPI description."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30Validator, oas30_format_checker

DATA = Path(__file__).resolve().parents[1] / "data"


@cache
def spec(product: str = "conversations") -> dict[str, Any]:
    version = "v2" if product == "studio" else "v1"
    loaded: dict[str, Any] = json.loads(
        (DATA / f"twilio_{product}_{version}.json").read_text("utf-8")
    )
    return loaded


def _resolve(node: Any, product: str) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            target = spec(product)["components"]["schemas"][ref.rsplit("/", 1)[1]]
            return _resolve(copy.deepcopy(target), product)
        return {key: _resolve(value, product) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(item, product) for item in node]
    return node


def response_schema(
    path: str, method: str, status: int, product: str = "conversations"
) -> dict[str, Any]:
    operation = spec(product)["paths"][path][method]
    content = operation["responses"][str(status)]["content"]["application/json"]
    resolved: dict[str, Any] = _resolve(content["schema"], product)
    return resolved


def assert_matches(
    instance: Any, path: str, method: str, status: int, product: str = "conversations"
) -> None:
    """Valid against the spec's schema, with exactly the fields Twilio's resource has."""
    schema = response_schema(path, method, status, product)
    OAS30Validator(schema, format_checker=oas30_format_checker).validate(instance)
    properties = schema.get("properties", {})
    list_key = next((k for k in properties if k != "meta"), None) if "meta" in properties else None
    if list_key is None:
        assert set(instance) == set(properties), set(instance) ^ set(properties)
    else:
        item_fields = set(properties[list_key]["items"]["properties"])
        for item in instance[list_key]:
            assert set(item) == item_fields, set(item) ^ item_fields
        assert instance["meta"]["key"] == list_key
