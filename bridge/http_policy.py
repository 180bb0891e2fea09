"""What every HTTP exchange gets: a request id and one access-log line, CORS for the
configured origins only, and security headers. (Reading unread bodies, for keep-alive, is
the ASGI dispatcher's: bridge.asgi.)"""

from __future__ import annotations

import logging
import time

from quart import Quart, Response, g, request

from bridge import logs
from bridge.config import Settings

log = logging.getLogger("bridge.http")

#: Pages a browser renders must not be framed, sniffed or leak the URL onwards.
HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
CORS_MAX_AGE_SECONDS = 600


def install(app: Quart, settings: Settings) -> None:
    allowed = frozenset(settings.cors_origins)
    allow_headers = ", ".join(
        sorted({"Content-Type", "Authorization", "X-Request-Id", settings.auth.api_key_header})
    )

    @app.before_request
    async def start() -> None:
        g.started = time.perf_counter()
        logs.request_id.set(logs.new_request_id(request.headers.get("X-Request-Id")))
        logs.identity.set(None)
        logs.conversation_sid.set(None)

    @app.after_request
    async def finish(response: Response) -> Response:
        headers = response.headers
        headers["X-Request-Id"] = logs.request_id.get() or ""
        headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.mimetype == "text/html":
            for name, value in HTML_HEADERS.items():
                headers.setdefault(name, value)
        origin = request.headers.get("Origin")
        if origin and origin in allowed:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Expose-Headers"] = "Retry-After, X-Request-Id"
            headers.add("Vary", "Origin")
            if request.method == "OPTIONS":
                headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
                headers["Access-Control-Allow-Headers"] = allow_headers
                headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE_SECONDS)
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        logs.event(
            log,
            "http.request",
            method=request.method,
            route=rule,
            status=response.status_code,
            ms=round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1),
        )
        return response
