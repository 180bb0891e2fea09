"""OAuth persistence: small typed functions over the store's connection."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass

import aiosqlite

from bridge.store import fetch, fetch_one


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
    kind: str
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
    auth_method: str  # none | client_secret_basic | client_secret_post
    redirect_uris: tuple[str, ...]
    metadata: dict[str, object]

    @property
    def public(self) -> bool:
        return self.auth_method == "none"


async def save_pending(db: aiosqlite.Connection, pending: PendingSignIn) -> None:
    await fetch(
        db,
        "INSERT INTO oauth_requests (upstream_state, client_id, redirect_uri, state, scope,"
        " nonce, code_verifier, code_challenge, resource, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            pending.upstream_state,
            pending.client_id,
            pending.redirect_uri,
            pending.state,
            pending.scope,
            pending.nonce,
            pending.code_verifier,
            pending.code_challenge,
            pending.resource,
            pending.created_at,
        ),
    )


async def take_pending(
    db: aiosqlite.Connection, upstream_state: str, max_age: float
) -> PendingSignIn | None:
    """The sign-in for this upstream state, removed so it can be completed only once."""
    row = await fetch_one(
        db, "DELETE FROM oauth_requests WHERE upstream_state = ? RETURNING *", (upstream_state,)
    )
    await fetch(db, "DELETE FROM oauth_requests WHERE created_at < ?", (time.time() - max_age,))
    if row is None or row["created_at"] < time.time() - max_age:
        return None
    return PendingSignIn(**dict(row))


async def issue_code(
    db: aiosqlite.Connection, grant: Grant, pending: PendingSignIn, lifetime: float
) -> str:
    code = new_secret()
    await fetch(
        db,
        "INSERT INTO oauth_codes (code_hash, client_id, redirect_uri, subject, scope, profile,"
        " code_challenge, resource, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            hash_secret(code),
            grant.client_id,
            pending.redirect_uri,
            grant.subject,
            grant.scope,
            grant.profile,
            pending.code_challenge,
            pending.resource,
            time.time() + lifetime,
        ),
    )
    return code


async def use_code(db: aiosqlite.Connection, code: str) -> tuple[CodeRow | None, bool]:
    """Mark the code used; return it and whether this call was the first to use it."""
    code_hash = hash_secret(code)
    used = await fetch(
        db,
        "UPDATE oauth_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL RETURNING 1",
        (time.time(), code_hash),
    )
    first = bool(used)
    row = await fetch_one(db, "SELECT * FROM oauth_codes WHERE code_hash = ?", (code_hash,))
    return (CodeRow(**dict(row)) if row else None), first


async def issue_token(
    db: aiosqlite.Connection,
    kind: str,
    family: str,
    grant: Grant,
    lifetime: float,
    resource: str | None = None,
) -> str:
    token = new_secret()
    now = time.time()
    await fetch(
        db,
        "INSERT INTO oauth_tokens (token_hash, kind, family, client_id, subject, scope, profile,"
        " expires_at, created_at, resource) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            hash_secret(token),
            kind,
            family,
            grant.client_id,
            grant.subject,
            grant.scope,
            grant.profile,
            now + lifetime,
            now,
            resource,
        ),
    )
    return token


async def find_token(db: aiosqlite.Connection, token: str, kind: str) -> TokenRow | None:
    row = await fetch_one(
        db,
        "SELECT * FROM oauth_tokens WHERE token_hash = ? AND kind = ?",
        (hash_secret(token), kind),
    )
    return TokenRow(**dict(row)) if row else None


async def revoke_token(db: aiosqlite.Connection, token_hash: str) -> bool:
    """Revoke one token; True if this call revoked it (it was live)."""
    revoked = await fetch(
        db,
        "UPDATE oauth_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL"
        " RETURNING 1",
        (time.time(), token_hash),
    )
    return bool(revoked)


async def revoke_family(db: aiosqlite.Connection, family: str) -> None:
    await fetch(
        db,
        "UPDATE oauth_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL",
        (time.time(), family),
    )


async def save_client(db: aiosqlite.Connection, client: ClientRow) -> None:
    await fetch(
        db,
        "INSERT INTO oauth_clients (client_id, client_secret_hash, auth_method, redirect_uris,"
        " metadata, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (
            client.client_id,
            client.client_secret_hash,
            client.auth_method,
            json.dumps(list(client.redirect_uris)),
            json.dumps(client.metadata),
            time.time(),
        ),
    )


async def find_client(db: aiosqlite.Connection, client_id: str) -> ClientRow | None:
    row = await fetch_one(
        db,
        "SELECT client_id, client_secret_hash, auth_method, redirect_uris, metadata"
        " FROM oauth_clients WHERE client_id = ?",
        (client_id,),
    )
    if row is None:
        return None
    return ClientRow(
        client_id=row["client_id"],
        client_secret_hash=row["client_secret_hash"],
        auth_method=row["auth_method"],
        redirect_uris=tuple(json.loads(row["redirect_uris"])),
        metadata=json.loads(row["metadata"]),
    )
