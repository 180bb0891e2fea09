"""Signing users in at the upstream OpenID Connect provider (authlib client, joserfc JWTs).

Discovery, the authorization-code flow with PKCE (S256) and a nonce, and ID-token
verification against the provider's JWKS. Discovery is fetched on first use, not at
start-up: the sandbox's provider shares the bridge's port and is not listening yet then.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0


class UpstreamError(Exception):
    """The provider could not be reached, or its answer did not verify."""


@dataclass(frozen=True)
class VerifiedUser:
    subject: str  # issuer-qualified: unique across providers
    name: str
    email: str


class OidcProvider:
    def __init__(self, issuer: str, client_id: str, client_secret: str, redirect_uri: str) -> None:
        self.issuer = issuer.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._lock = asyncio.Lock()

    def _client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self._client_id,
            client_secret=self._client_secret,
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name
            redirect_uri=self._redirect_uri,
            scope="openid profile email",
            code_challenge_method="S256",
            timeout=TIMEOUT_SECONDS,
        )

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self._client() as client:
                response = await client.request("GET", url, withhold_token=True)
        except Exception as exc:  # httpx2 transport errors, timeouts
            raise UpstreamError(f"cannot reach {url}: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise UpstreamError(f"{url} answered {response.status_code}")
        body: dict[str, Any] = response.json()
        return body

    async def metadata(self) -> dict[str, Any]:
        async with self._lock:
            if self._metadata is None:
                found = await self._get_json(f"{self.issuer}/.well-known/openid-configuration")
                if found.get("issuer", "").rstrip("/") != self.issuer:
                    raise UpstreamError("the discovery document names another issuer")
                self._metadata = found
            return self._metadata

    async def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            jwks = await self._get_json(str((await self.metadata())["jwks_uri"]))
            self._keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        return self._keys

    async def authorization_url(self, state: str, nonce: str, code_verifier: str) -> str:
        endpoint = str((await self.metadata())["authorization_endpoint"])
        async with self._client() as client:
            url, _ = client.create_authorization_url(
                endpoint, state=state, nonce=nonce, code_verifier=code_verifier
            )
        return str(url)

    async def sign_in(self, code: str, code_verifier: str, nonce: str) -> VerifiedUser:
        """Exchange the code and verify the ID token; the user's verified identity."""
        endpoint = str((await self.metadata())["token_endpoint"])
        try:
            async with self._client() as client:
                token = await client.fetch_token(
                    endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                )
        except Exception as exc:  # authlib OAuthError, transport errors
            raise UpstreamError(f"code exchange failed: {type(exc).__name__}") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise UpstreamError("the provider sent no ID token")
        claims = await self._verify(id_token, nonce)
        return VerifiedUser(
            subject=f"{self.issuer}#{claims['sub']}",
            name=str(claims.get("name") or ""),
            email=str(claims.get("email") or ""),
        )

    async def _verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        registry = JWTClaimsRegistry(
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self._client_id},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        for refresh in (False, True):  # a key the cached set lacks may be a rotated one
            try:
                decoded = jwt.decode(id_token, await self._key_set(refresh), algorithms=["RS256"])
                registry.validate(decoded.claims)
                return dict(decoded.claims)
            except JoseError as exc:
                error = exc
        raise UpstreamError(f"the ID token did not verify: {error.error}")


def s256(verifier: str) -> str:
    return str(create_s256_code_challenge(verifier))
