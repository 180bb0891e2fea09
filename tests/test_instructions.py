"""The assistants' instructions: one text, the same in the GPT kit and from the MCP
server, each with its own names for the operations, all of which exist."""

from __future__ import annotations

from pathlib import Path

import yaml

from bridge.instructions import instructions
from bridge.mcp import tools
from bridge.routes import handoff
from tests.conftest import LiveServer
from tests.test_mcp import connect

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpt_kit_carries_the_instructions_with_the_actions_names() -> None:
    text = instructions(handoff.WORDS)
    assert text in (ROOT / "docs" / "gpt-actions.md").read_text("utf-8")
    contract = yaml.safe_load((ROOT / "bridge" / "assets" / "openapi.yaml").read_text("utf-8"))
    operations = {
        operation["operationId"]
        for path in contract["paths"].values()
        for operation in path.values()
    }
    words = handoff.WORDS
    assert {words.send, words.replies, words.choose, words.end} <= operations
    replies = next(
        operation
        for path in contract["paths"].values()
        for operation in path.values()
        if operation["operationId"] == words.replies
    )
    named = {p.get("name") or p.get("$ref", "").rsplit("/", 1)[-1] for p in replies["parameters"]}
    assert words.after in named
    assert all(name in text for name in (words.send, words.replies, words.choose, words.end))


async def test_mcp_clients_get_the_same_instructions_with_the_tools_names(
    server: LiveServer,
) -> None:
    async with connect(server) as mcp:
        given = mcp.instructions
        listed = {tool.name: tool for tool in (await mcp.list_tools()).tools}
    assert given == instructions(tools.WORDS)
    words = tools.WORDS
    assert {words.send, words.replies, words.choose, words.end} <= set(listed)
    assert words.after in listed[words.replies].input_schema["properties"]
