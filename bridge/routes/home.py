"""What a person or a client finds at ``/``, and the interactive API reference at ``/docs``.

``/`` answers a browser with a small page (what this is, whether it is ready, where to go
next) and anything else with the same as JSON. ``/docs`` is Swagger UI over
``/openapi.json``, its files from the swagger-ui-py package (no CDN).
"""

from __future__ import annotations

from html import escape
from importlib import resources
from urllib.parse import urlsplit

from quart import Blueprint, Response, abort, jsonify, request

from bridge.routes import services
from bridge.routes.operations import readiness
from bridge.version import package_version

home = Blueprint("home", __name__)

#: The Swagger UI files /docs serves, from the swagger-ui-py package.
SWAGGER_UI = resources.files("swagger_ui").joinpath("static")
SWAGGER_FILES = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
#: Try it out calls the API at PUBLIC_URL (the document's server), added to connect-src.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self' {public}; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def wants_html() -> bool:
    """A browser navigating here, rather than a client asking for data."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def _links() -> dict[str, str]:
    wired = services()
    url = wired.settings.public_url
    links = {
        "api_reference": f"{url}/docs",
        "openapi": f"{url}/openapi.yaml",
        "plugin_manifest": f"{url}/.well-known/ai-plugin.json",
        "mcp": f"{url}/mcp",
        "health": f"{url}/readyz",
    }
    if wired.settings.sandbox:
        links["agent_console"] = f"{url}/sandbox/"
        links["mcp_host"] = f"{url}/sandbox/mcp-host/"
    return links


_TITLES = {
    "agent_console": "The agent console: answer as the Flex agent (sandbox)",
    "mcp_host": "A stand-in assistant showing the live chat pane (sandbox)",
    "api_reference": "The API reference, to try each call",
    "openapi": "The OpenAPI contract (for a GPT's Actions)",
    "plugin_manifest": "The plugin manifest",
    "mcp": "The MCP endpoint (for ChatGPT, Claude and other MCP clients)",
    "health": "Readiness: the store, Twilio and wake-ups",
}


@home.get("/")
async def index() -> Response:
    wired = services()
    sandbox = wired.settings.sandbox
    links = _links()
    checks = await readiness(wired)
    ready = all(value == "ok" for value in checks.values())
    if not wants_html():
        answer = jsonify(
            {
                "service": "flex-bridge",
                "description": "Hands a chat from an AI assistant to a human agent in Flex.",
                "version": package_version(),
                "mode": "sandbox" if sandbox else "twilio",
                "status": "ready" if ready else "not_ready",
                "links": links,
            }
        )
        answer.headers["Vary"] = "Accept"
        return answer
    problems = "; ".join(f"{name}: {value}" for name, value in checks.items() if value != "ok")
    status = "ready" if ready else f"not ready ({problems})"
    items = "\n".join(
        f'<li><a href="{escape(link)}">{escape(_TITLES[name])}</a> <code>{escape(link)}</code></li>'
        for name, link in links.items()
    )
    mode = (
        "Sandbox mode: Twilio is emulated on this machine; nothing leaves it."
        if sandbox
        else "Connected to Twilio."
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Flex Bridge</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto;
        padding: 0 1rem; color: #1a2230; }}
code {{ font-size: 13px; color: #5b6676; }} li {{ margin: .4rem 0; }}
</style></head>
<body>
<h1>Flex Bridge <small>{escape(package_version())}</small></h1>
<p>Lets a person chatting with an AI assistant reach a human agent in Twilio Flex: the
assistant calls this service, the agent answers in Flex, and the answer comes back to the
user through the assistant.</p>
<p><strong>{escape(mode)}</strong></p>
<p>Status: <strong id="status">{escape(status)}</strong> (<a href="/readyz">/readyz</a>).</p>
<ul>
{items}
</ul>
</body></html>
"""
    response = Response(page, content_type="text/html; charset=utf-8")
    response.headers["Vary"] = "Accept"
    return response


@home.get("/docs")
async def docs() -> Response:
    page = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Flex Bridge API reference</title>
<link rel="icon" href="/docs/static/favicon-32x32.png">
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<script src="/docs/static/swagger-ui-bundle.js" defer></script>
<script src="/docs/init.js" defer></script>
</head><body><div id="reference"></div></body></html>
"""
    response = Response(page, content_type="text/html; charset=utf-8")
    public = urlsplit(services().settings.public_url)
    origin = f"{public.scheme}://{public.netloc}"
    response.headers["Content-Security-Policy"] = DOCS_POLICY.format(public=origin)
    return response


@home.get("/docs/init.js")
async def docs_init() -> Response:
    script = resources.files("bridge.assets").joinpath("docs-init.js").read_text("utf-8")
    return _static(script.encode(), "text/javascript; charset=utf-8")


@home.get("/docs/static/<name>")
async def docs_static(name: str) -> Response:
    kind = SWAGGER_FILES.get(name)
    if kind is None:
        abort(404)
    return _static(SWAGGER_UI.joinpath(name).read_bytes(), kind)


def _static(body: bytes, kind: str) -> Response:
    response = Response(body, content_type=kind)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
