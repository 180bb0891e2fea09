"""What the authorization server answers, for the OAuth routes to send."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode


@dataclass(frozen=True)
class ErrorPage:
    """Shown to the person, never redirected (the redirect URI is not to be trusted)."""

    message: str
    status: int = 400
    retry_after: int | None = None


@dataclass(frozen=True)
class Redirect:
    url: str
    #: The browser's sign-in cookie to set, when this answer starts a sign-in.
    browser: str | None = None


@dataclass(frozen=True)
class ConsentPage:
    """The bridge's own question to a signed-in person about a client it has not vetted."""

    client_name: str
    redirect_uri: str
    redirect_origin: str  # where the form's answer redirects: allowed by the page's CSP
    user_name: str
    user_email: str
    token: str  # single-use, and only good with the browser's sign-in cookie


@dataclass(frozen=True)
class TokenResponse:
    status: int
    body: dict[str, object]
    www_authenticate: str | None = None
    retry_after: int | None = None


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> TokenResponse:
        header = 'Basic realm="oauth"' if self.status == 401 else None
        body: dict[str, object] = {"error": self.error, "error_description": self.description}
        return TokenResponse(self.status, body, header)


def with_query(url: str, params: Mapping[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
