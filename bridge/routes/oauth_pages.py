"""The pages the OAuth routes show a person: an error, and the consent question.

Every value is HTML-escaped; the pages run no script, cannot be framed, and post their
form only to this server (the consent page also lets the answer's redirect leave for the
client's redirect URI, which browsers check against ``form-action``).
"""

from __future__ import annotations

from markupsafe import escape
from quart import Response

from bridge.auth.results import ConsentPage, ErrorPage

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;"
    "line-height:1.5;color:#1d2433}code{word-break:break-all;background:#f1f3f7;padding:0 .2em}"
    "button{font:inherit;padding:.5rem 1.25rem;margin-right:.75rem;border-radius:6px;"
    "border:1px solid #8a94a6;background:#fff;cursor:pointer}"
    "button.allow{background:#1f5bd6;border-color:#1f5bd6;color:#fff}"
    ".note{color:#5b6475;font-size:.9rem}"
)

_ERROR = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in problem</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{style}</style></head>
<body><h1>Sign-in could not continue</h1><p>{message}</p>
<p>Go back to the assistant and try connecting again.</p></body></html>"""

_CONSENT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Allow access to human support?</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{style}</style></head>
<body>
<h1>Allow <span id="client">{client}</span> to reach human support for you?</h1>
<p>You are signed in as <strong id="user">{user}</strong>.</p>
<p>The application that calls itself <strong>{client}</strong> asks to:</p>
<ul><li>send your messages to a human support agent on your behalf, and</li>
<li>read the agents' replies to you.</li></ul>
<p>If you allow it, you will be sent back to <strong id="host">{host}</strong>:<br>
<code id="redirect">{redirect}</code></p>
<p class="note">The name above is the application's own description of itself; this service
has not checked it. Allow only if you just connected an assistant you use to this support
line and you recognise that address.</p>
<form method="post" action="/oauth/consent">
<input type="hidden" name="consent" value="{token}">
<button class="allow" type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form></body></html>"""

_BASE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"


def _page(body: str, status: int, form_action: str, referrer: str = "no-referrer") -> Response:
    page = Response(body, status=status, content_type="text/html; charset=utf-8")
    page.headers["Content-Security-Policy"] = f"{_BASE_CSP}; form-action {form_action}"
    page.headers["X-Frame-Options"] = "DENY"
    page.headers["Referrer-Policy"] = referrer
    page.headers["Cache-Control"] = "no-store"
    return page


def error_page(error: ErrorPage) -> Response:
    page = _page(_ERROR.format(style=_STYLE, message=escape(error.message)), error.status, "'none'")
    if error.retry_after is not None:
        page.headers["Retry-After"] = str(error.retry_after)
    return page


def consent_page(consent: ConsentPage) -> Response:
    user = (
        f"{consent.user_name} ({consent.user_email})" if consent.user_email else consent.user_name
    )
    body = _CONSENT.format(
        style=_STYLE,
        client=escape(consent.client_name),
        user=escape(user or "an unnamed account"),
        host=escape(consent.redirect_origin),
        redirect=escape(consent.redirect_uri),
        token=escape(consent.token),
    )
    # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with
    # the form, and the answer's origin is what proves it came from this page.
    return _page(body, 200, f"'self' {consent.redirect_origin}", "same-origin")


_SIGNED_IN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signed in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{style}</style></head>
<body><h1>Signed in</h1>
<p>This is the sandbox's stand-in for an assistant's OAuth callback. The assistant
would now hold this access token for the signed-in person (it lasts {minutes} minutes):</p>
<pre id="token">{token}</pre>
<p>The next call, as the assistant makes it (the user in the path is ignored: the user is
the person who signed in):</p>
<pre id="next">{call}</pre>
</body></html>"""

_NOT_EXCHANGED = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signed in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{style}</style></head>
<body><h1>Signed in</h1>
<p>The authorization code, valid for a minute, for the client <code>{client}</code>.
Exchange it with that client's secret:</p>
<pre id="exchange">{call}</pre>
</body></html>"""


def signed_in_page(token: str, minutes: int, call: str) -> Response:
    """The sandbox's OAuth landing page: the token, and the call to make with it."""
    body = _SIGNED_IN.format(style=_STYLE, token=escape(token), minutes=minutes, call=escape(call))
    return _page(body, 200, "'none'")


def exchange_page(client: str, call: str) -> Response:
    """The landing page when the bridge cannot exchange the code itself (a secret of the
    operator's own): the call that does."""
    return _page(
        _NOT_EXCHANGED.format(style=_STYLE, client=escape(client), call=escape(call)),
        200,
        "'none'",
    )
