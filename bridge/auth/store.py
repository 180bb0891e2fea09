"""What the authorization server keeps: rows as dataclasses, and the protocol a store
implements for them (``bridge.stores.sqlite`` for SQLite).

Codes and tokens reach the store only as SHA-256 hashes; the server makes and hashes them.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal, Protocol

TokenKind = Literal["access", "refresh"]
ClientAuthMethod = Literal["none", "client_secret_basic", "client_secret_post"]


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class PendingSignIn:
    upstream_state: str
    client_id: str
    redirect_uri: str
    state: str
    scope: str
    nonce: str
    code_verifier: str
    code_challenge: str | None
    resource: str | None
    created_at: float
    browser_hash: str  # SHA-256 of the sign-in cookie of the browser that started it


@dataclass(frozen=True)
class ConsentRequest:
    """A signed-in user on the consent page: what their yes would issue a code for."""

    consent_hash: str
    browser_hash: str
    client_id: str
    redirect_uri: str
    state: str
    scope: str
    subject: str
    profile: str
    code_challenge: str | None
    resource: str | None
    created_at: float


@dataclass(frozen=True)
class Grant:
    """What a code or token stands for."""

    client_id: str
    subject: str
    scope: str
    profile: str


@dataclass(frozen=True)
class CodeRow(Grant):
    code_hash: str
    redirect_uri: str
    code_challenge: str | None
    resource: str | None
    expires_at: float
    used_at: float | None


@dataclass(frozen=True)
class TokenRow(Grant):
    token_hash: str
    kind: TokenKind
    family: str
    expires_at: float
    created_at: float
    revoked_at: float | None
    resource: str | None  # the RFC 8707 audience, None when none was asked for


@dataclass(frozen=True)
class ClientRow:
    """A client registered at the registration endpoint."""

    client_id: str
    client_secret_hash: str | None
    auth_method: ClientAuthMethod
    redirect_uris: tuple[str, ...]
    metadata: dict[str, object]

    @property
    def public(self) -> bool:
        return self.auth_method == "none"


class OAuthStore(Protocol):
    async def save_pending(self, pending: PendingSignIn) -> None: ...

    async def take_pending(self, upstream_state: str, max_age: float) -> PendingSignIn | None:
        """The sign-in for this upstream state, removed so it can be completed only once
        (None when unknown or older than ``max_age`` seconds); stale ones are dropped."""

    async def purge_abandoned(self, started_before: float) -> None:
        """Drop sign-ins and consent pages started before ``started_before`` (unix time)."""

    async def save_consent_request(self, request: ConsentRequest) -> None: ...

    async def take_consent_request(
        self, consent_hash: str, started_after: float
    ) -> ConsentRequest | None:
        """The consent page's request, removed so it is answered once (None when unknown
        or started before ``started_after``)."""

    async def has_consent(self, subject: str, client_id: str) -> bool: ...

    async def save_consent(self, subject: str, client_id: str) -> None: ...

    async def save_code(self, code: CodeRow) -> None: ...

    async def use_code(self, code_hash: str) -> tuple[CodeRow | None, bool]:
        """Mark the code used; return it and whether this call was the first to use it."""

    async def save_token(self, token: TokenRow) -> None: ...

    async def find_token(self, token_hash: str, kind: TokenKind) -> TokenRow | None:
        """The token; ``revoked_at`` is set when it or its family was revoked."""

    async def revoke_token(self, token_hash: str) -> bool:
        """Revoke one token; True if this call revoked it (it was live)."""

    async def revoke_family(self, family: str) -> None:
        """Revoke every token of the family, including any issued after this call."""

    async def save_client(self, client: ClientRow) -> None: ...

    async def find_client(self, client_id: str) -> ClientRow | None: ...

    async def touch_client(self, client_id: str) -> None:
        """Note that the client was just given tokens."""

    async def purge_clients(self, unused_since: float, idle_since: float) -> None:
        """Drop registered clients never used and registered before ``unused_since``, or
        last used before ``idle_since``, with the consents given to them."""
