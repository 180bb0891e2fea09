"""Store implementations, one package per backend, chosen by DATABASE_URL."""

from __future__ import annotations

from typing import Protocol

from bridge.auth.store import OAuthStore
from bridge.config import Settings
from bridge.store import Store
from bridge.stores.sqlite import open_sqlite_store


class Backend(Store, OAuthStore, Protocol):
    """One database holding the hand-off's and the authorization server's tables."""


async def open_store(settings: Settings, *, name: str = "flex-bridge") -> Backend:
    """Open the store DATABASE_URL names, migrated; raises StoreUnavailable. ``name``
    names this process's PostgreSQL connections (see bridge.stores.base.process_name)."""
    if settings.postgres_url is not None:
        from bridge.stores.postgres import open_postgres_store

        return await open_postgres_store(settings.postgres_url, name=name)
    return await open_sqlite_store(settings.database_path)
