"""The authorization server's tables in SQLite: pending sign-ins, codes, tokens, clients."""

from __future__ import annotations

import json
import time

from bridge.auth.store import ClientRow, CodeRow, PendingSignIn, TokenKind, TokenRow
from bridge.stores.sqlite.connection import SqliteConnection


class OAuthTables(SqliteConnection):
    async def save_pending(self, pending: PendingSignIn) -> None:
        await self.fetch(
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

    async def take_pending(self, upstream_state: str, max_age: float) -> PendingSignIn | None:
        row = await self.fetch_one(
            "DELETE FROM oauth_requests WHERE upstream_state = ? RETURNING *", (upstream_state,)
        )
        oldest = time.time() - max_age
        await self.fetch("DELETE FROM oauth_requests WHERE created_at < ?", (oldest,))
        if row is None or row["created_at"] < oldest:
            return None
        return PendingSignIn(**dict(row))

    async def save_code(self, code: CodeRow) -> None:
        await self.fetch(
            "INSERT INTO oauth_codes (code_hash, client_id, redirect_uri, subject, scope,"
            " profile, code_challenge, resource, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                code.code_hash,
                code.client_id,
                code.redirect_uri,
                code.subject,
                code.scope,
                code.profile,
                code.code_challenge,
                code.resource,
                code.expires_at,
            ),
        )

    async def use_code(self, code_hash: str) -> tuple[CodeRow | None, bool]:
        used = await self.fetch(
            "UPDATE oauth_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL"
            " RETURNING 1",
            (time.time(), code_hash),
        )
        row = await self.fetch_one("SELECT * FROM oauth_codes WHERE code_hash = ?", (code_hash,))
        return (CodeRow(**dict(row)) if row else None), bool(used)

    async def save_token(self, token: TokenRow) -> None:
        await self.fetch(
            "INSERT INTO oauth_tokens (token_hash, kind, family, client_id, subject, scope,"
            " profile, expires_at, created_at, resource) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                token.token_hash,
                token.kind,
                token.family,
                token.client_id,
                token.subject,
                token.scope,
                token.profile,
                token.expires_at,
                token.created_at,
                token.resource,
            ),
        )

    async def find_token(self, token_hash: str, kind: TokenKind) -> TokenRow | None:
        row = await self.fetch_one(
            "SELECT * FROM oauth_tokens WHERE token_hash = ? AND kind = ?", (token_hash, kind)
        )
        return TokenRow(**dict(row)) if row else None

    async def revoke_token(self, token_hash: str) -> bool:
        revoked = await self.fetch(
            "UPDATE oauth_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL"
            " RETURNING 1",
            (time.time(), token_hash),
        )
        return bool(revoked)

    async def revoke_family(self, family: str) -> None:
        await self.fetch(
            "UPDATE oauth_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL",
            (time.time(), family),
        )

    async def save_client(self, client: ClientRow) -> None:
        await self.fetch(
            "INSERT INTO oauth_clients (client_id, client_secret_hash, auth_method,"
            " redirect_uris, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                client.client_id,
                client.client_secret_hash,
                client.auth_method,
                json.dumps(list(client.redirect_uris)),
                json.dumps(client.metadata),
                time.time(),
            ),
        )

    async def find_client(self, client_id: str) -> ClientRow | None:
        row = await self.fetch_one(
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
