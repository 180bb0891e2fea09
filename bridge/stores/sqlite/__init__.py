"""The embedded store: one SQLite file in WAL mode (``DATABASE_URL=sqlite:///…``)."""

from __future__ import annotations

from pathlib import Path

from bridge.stores.handoff import HandoffTables
from bridge.stores.oauth import OAuthTables
from bridge.stores.sqlite.connection import SqliteConnection


class SqliteStore(HandoffTables, OAuthTables, SqliteConnection):
    """The hand-off's and the authorization server's tables in one database file."""


async def open_sqlite_store(path: Path) -> SqliteStore:
    return await SqliteStore.open(path)


__all__ = ["SqliteStore", "open_sqlite_store"]
