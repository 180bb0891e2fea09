"""The shared store: PostgreSQL through psycopg 3 (``DATABASE_URL=postgresql://…``), for
several bridge processes on one database."""

from __future__ import annotations

from bridge.stores.handoff import HandoffTables
from bridge.stores.oauth import OAuthTables
from bridge.stores.postgres.connection import PostgresConnection


class PostgresStore(HandoffTables, OAuthTables, PostgresConnection):
    """The hand-off's and the authorization server's tables in one PostgreSQL database."""


async def open_postgres_store(
    url: str, *, name: str = "flex-bridge", connect_seconds: float = 10.0
) -> PostgresStore:
    """``name``: this process's, the same its coordination uses (see process_name)."""
    return await PostgresStore.open(url, name=name, connect_seconds=connect_seconds)


__all__ = ["PostgresStore", "open_postgres_store"]
