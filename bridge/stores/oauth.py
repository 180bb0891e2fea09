"""The authorization server's tables: pending sign-ins, codes, tokens, clients (the SQL
both backends speak)."""

from __future__ import annotations

import json
import time

from bridge.auth.store import (
    ClientRow,
    CodeRow,
    ConsentRequest,
    PendingSignIn,
    TokenKind,
    TokenRow,
)
from bridge.stores.base import Database, fields, placeholders


class OAuthTables(Database):
    async def save_pending(self, pending: PendingSignIn) -> None:
        await self.fetch(
            "INSERT INTO oauth_requests (upstream_state, client_id, redirect_uri, state, scope,"
            " nonce, code_verifier, code_challenge, resource, created_at, browser_hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                pending.browser_hash,
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
        return PendingSignIn(**fields(row))

    async def purge_abandoned(self, started_before: float) -> None:
        await self.fetch("DELETE FROM oauth_requests WHERE created_at < ?", (started_before,))
        await self.fetch(
            "DELETE FROM oauth_consent_requests WHERE created_at < ?", (started_before,)
        )

    async def save_consent_request(self, request: ConsentRequest) -> None:
        await self.fetch(
            "INSERT INTO oauth_consent_requests (consent_hash, browser_hash, client_id,"
            " redirect_uri, state, scope, subject, profile, code_challenge, resource,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                request.consent_hash,
                request.browser_hash,
                request.client_id,
                request.redirect_uri,
                request.state,
                request.scope,
                request.subject,
                request.profile,
                request.code_challenge,
                request.resource,
                request.created_at,
            ),
        )

    async def take_consent_request(
        self, consent_hash: str, started_after: float
    ) -> ConsentRequest | None:
        row = await self.fetch_one(
            "DELETE FROM oauth_consent_requests WHERE consent_hash = ? RETURNING *",
            (consent_hash,),
        )
        if row is None or row["created_at"] < started_after:
            return None
        return ConsentRequest(**fields(row))

    async def has_consent(self, subject: str, client_id: str) -> bool:
        row = await self.fetch_one(
            "SELECT 1 FROM oauth_consents WHERE subject = ? AND client_id = ?",
            (subject, client_id),
        )
        return row is not None

    async def save_consent(self, subject: str, client_id: str) -> None:
        await self.fetch(
            "INSERT INTO oauth_consents (subject, client_id, created_at)"
            " VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (subject, client_id, time.time()),
        )

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
        return CodeRow(**fields(row)) if row else None, bool(used)

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
        # A family's revocation counts for every token in it, whenever it was issued.
        row = await self.fetch_one(
            "SELECT t.token_hash, t.kind, t.family, t.client_id, t.subject, t.scope,"
            " t.profile, t.expires_at, t.created_at, t.resource,"
            " COALESCE(t.revoked_at, f.revoked_at) AS revoked_at"
            " FROM oauth_tokens t LEFT JOIN oauth_revoked_families f ON f.family = t.family"
            " WHERE t.token_hash = ? AND t.kind = ?",
            (token_hash, kind),
        )
        return TokenRow(**fields(row)) if row else None

    async def revoke_token(self, token_hash: str) -> bool:
        revoked = await self.fetch(
            "UPDATE oauth_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL"
            " RETURNING 1",
            (time.time(), token_hash),
        )
        return bool(revoked)

    async def revoke_family(self, family: str) -> None:
        now = time.time()
        await self.fetch(
            "INSERT INTO oauth_revoked_families (family, revoked_at) VALUES (?, ?)"
            " ON CONFLICT DO NOTHING",
            (family, now),
        )
        await self.fetch(
            "UPDATE oauth_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL",
            (now, family),
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

    async def touch_client(self, client_id: str) -> None:
        await self.fetch(
            "UPDATE oauth_clients SET last_used_at = ? WHERE client_id = ?",
            (time.time(), client_id),
        )

    async def purge_clients(self, unused_since: float, idle_since: float) -> None:
        gone = await self.fetch(
            "DELETE FROM oauth_clients WHERE (last_used_at IS NULL AND created_at < ?)"
            " OR last_used_at < ? RETURNING client_id",
            (unused_since, idle_since),
        )
        if gone:
            await self.fetch(
                f"DELETE FROM oauth_consents WHERE client_id IN ({placeholders(len(gone))})",  # noqa: S608
                [row[0] for row in gone],
            )
