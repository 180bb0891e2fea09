"""A sandbox MCP host at ``/sandbox/mcp-host/``: the live chat pane as ChatGPT or Claude
would show it, for trying it locally and for the browser tests.

The page plays the assistant: what you type is sent with ``request_human_agent``, as a
model would, over the bridge's own ``/mcp`` with the official MCP client; the tool's
``ui://`` resource is loaded into a sandboxed iframe and connected through the official
MCP Apps host (``AppBridge`` of ``@modelcontextprotocol/ext-apps``), which proxies the
pane's tool calls and refuses those the pane may not make. Both come from npm, bundled
by ``make mcp-host`` (``package.json`` pins them); without the bundle the page says how
to build it.
"""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response

STATIC = Path(__file__).parent / "static"
BUNDLE = STATIC / "host-bundle.js"

mcp_host = Blueprint(
    "mcp_host",
    __name__,
    url_prefix="/sandbox/mcp-host",
    static_folder="static",
    static_url_path="/static",
)

#: The pane is a srcdoc frame, so it inherits this policy on top of its own (which lets
#: only its own inline script and style run, by hash): inline code is allowed here for
#: that reason alone. The host page itself has no inline code and renders text only.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

_MISSING = """<!doctype html><html lang="en"><meta charset="utf-8">
<title>MCP host: not built</title>
<p>The sandbox MCP host needs its bundle of the official MCP Apps host and MCP client,
built from npm once: <code>make mcp-host</code> (Node.js and npm), then reload.</p>"""


@mcp_host.after_request
async def _security_headers(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache"
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@mcp_host.get("/")
async def page() -> Response:
    if not BUNDLE.exists():
        return Response(_MISSING, status=503, content_type="text/html; charset=utf-8")
    html = (STATIC / "host.html").read_bytes()
    return Response(html, content_type="text/html; charset=utf-8")
