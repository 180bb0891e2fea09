"""The MCP endpoint as an ASGI app: the SDK's Streamable HTTP server behind our checks.

Mounted at ``/mcp`` by :func:`bridge.asgi.build_asgi_app`; its lifespan (the SDK's
session manager) is started and stopped with the bridge's through the dispatcher.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from quart import Quart

from bridge.config import Settings
from bridge.instructions import instructions
from bridge.mcp.caller import ASGIApp, McpAuthentication
from bridge.mcp.live_chat import live_chat_app, tool_meta
from bridge.mcp.tools import WORDS, Handoff, register_tools

MCP_PATH = "/mcp"


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection: the Host (and any Origin) must be one the service answers
    (the dispatcher checks the Host for every path; the SDK checks it again, with Origin)."""
    public = urlsplit(settings.public_url)
    hosts = sorted(settings.allowed_hosts)
    origins = {f"{public.scheme}://{public.netloc}", *(f"http://{host}" for host in hosts)}
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=sorted(origins),
    )


def create_mcp_app(settings: Settings, bridge: Quart) -> ASGIApp:
    handoff = Handoff(bridge)
    server: MCPServer[Any] = MCPServer(
        "flex-bridge",
        title="Flex Bridge",
        instructions=instructions(WORDS),
        website_url=settings.public_url,
        extensions=[live_chat_app(handoff)],
    )
    register_tools(server, handoff, meta=tool_meta())
    # With several processes any of them must serve any request: the SDK keeps no
    # sessions, and the admission layer issues them (bridge.mcp.caller).
    shared = settings.postgres_url is not None
    app: ASGIApp = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=transport_security(settings),
        host=settings.host,
        stateless_http=shared,
    )
    return McpAuthentication(app, bridge, issue_sessions=shared)
