"""The sandbox identity provider's two HTML pages: the sign-in form and the error page.

No scripts; the only style is ``idp.css`` from ``static/``. Every value is HTML-escaped by
Jinja's autoescaping.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from quart import Response, render_template_string, url_for

FAVICON = "/sandbox/console/static/favicon.svg"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)

_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")

SCOPE_LABELS = {"profile": "your name", "email": "your email address"}

_HEAD = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{{ title }} · Flex Bridge sandbox</title>
  <link rel="icon" href="{{ favicon }}" type="image/svg+xml">
  <link rel="stylesheet" href="{{ stylesheet }}">
</head>
<body>
  <main class="card">
    <header class="brand">
      <img src="{{ favicon }}" alt="" width="36" height="36">
      <div>
        <p class="eyebrow">Flex Bridge sandbox · identity provider</p>
        <h1>{{ title }}</h1>
      </div>
    </header>
"""

_FOOT = """  </main>
</body>
</html>
"""

SIGN_IN = (
    _HEAD
    + """    <p class="lead"><strong>{{ client_id }}</strong> asks who you are.
      {%- if shared %} It will receive {{ shared }}.{% endif %}</p>
    <p class="note">A development sign-in: type any name and email address. There is no
      password, and nothing leaves this machine.</p>
    <form method="post" action="{{ action }}">
      <input type="hidden" name="handle" value="{{ handle }}">
      <div class="field">
        <label for="name">Name</label>
        <input id="name" name="name" type="text" value="{{ name }}" autocomplete="name"
               maxlength="{{ max_name }}" required autofocus
               {%- if errors.name %} aria-invalid="true" aria-describedby="name-error"{% endif %}>
        {%- if errors.name %}
        <p class="error" id="name-error">{{ errors.name }}</p>
        {%- endif %}
      </div>
      <div class="field">
        <label for="email">Email address</label>
        <input id="email" name="email" type="email" value="{{ email }}" autocomplete="email"
               maxlength="{{ max_email }}" required spellcheck="false"
               {%- if errors.email %} aria-invalid="true" aria-describedby="email-error"{% endif %}>
        {%- if errors.email %}
        <p class="error" id="email-error">{{ errors.email }}</p>
        {%- endif %}
      </div>
      <div class="actions">
        <button class="btn primary" type="submit" name="action" value="sign-in">Sign in</button>
        <button class="btn" type="submit" name="action" value="cancel"
                formnovalidate>Cancel</button>
      </div>
    </form>
"""
    + _FOOT
)

ERROR = (
    _HEAD
    + """    <p class="lead" role="alert">{{ message }}</p>
    <p class="note">Nothing was sent back to the application. You can close this page.</p>
"""
    + _FOOT
)


def page_security_policy(redirect_uri: str) -> str:
    """The page's CSP, letting the form's redirect go to the client (browsers apply
    ``form-action`` to the redirects that follow a submission)."""
    parts = urlsplit(redirect_uri)
    if parts.scheme in ("http", "https") and _HOST.match(parts.netloc):
        target = f"{parts.scheme}://{parts.netloc}"
    elif parts.scheme not in ("http", "https") and _SCHEME.match(parts.scheme):
        target = f"{parts.scheme}:"
    else:
        return CONTENT_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY.replace("form-action 'self'", f"form-action 'self' {target}")


async def sign_in_page(
    *,
    client_id: str,
    scopes: tuple[str, ...],
    handle: str,
    name: str,
    email: str,
    errors: dict[str, str] | None = None,
    max_name: int,
    max_email: int,
) -> Response:
    shared = " and ".join(SCOPE_LABELS[s] for s in scopes if s in SCOPE_LABELS)
    html = await render_template_string(
        SIGN_IN,
        title="Sign in",
        favicon=FAVICON,
        stylesheet=url_for("idp.stylesheet"),
        action=url_for("idp.authorize"),
        client_id=client_id,
        shared=shared,
        handle=handle,
        name=name,
        email=email,
        errors=errors or {},
        max_name=max_name,
        max_email=max_email,
    )
    return Response(html, content_type="text/html; charset=utf-8")


async def error_page(title: str, message: str) -> Response:
    html = await render_template_string(
        ERROR,
        title=title,
        favicon=FAVICON,
        stylesheet=url_for("idp.stylesheet"),
        message=message,
    )
    return Response(html, content_type="text/html; charset=utf-8")
