"""The PostgreSQL connection pool: opening it, migrations, and the one way to run SQL.

psycopg 3's async pool, every connection in autocommit mode (each statement is its own
transaction, as the tables expect). The tables write ``?`` placeholders, which become
psycopg's ``%s`` here; their SQL holds no other ``%``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Self
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import RowMaker
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from bridge.store import StoreUnavailable
from bridge.stores.base import Database, NamedRow, Row, migrations, now_text

#: Every bridge process starting at once migrates one at a time: this lock's number.
MIGRATION_LOCK = 7_212_001


def _named_rows(cursor: psycopg.AsyncCursor[Any]) -> RowMaker[NamedRow]:
    names = tuple(column.name for column in cursor.description or ())

    def make(values: Sequence[Any]) -> NamedRow:
        return NamedRow(values, names)

    return make


def where(url: str) -> str:
    """The server and database a URL names, without its user or password."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"


class PostgresConnection(Database):
    """Holds the pool; the tables' typed functions are mixed in above it."""

    def __init__(self, pool: AsyncConnectionPool, url: str) -> None:
        self._pool = pool
        self._url = url

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        name: str = "flex-bridge",
        max_size: int = 10,
        connect_seconds: float = 10.0,
    ) -> Self:
        """Open a pool to ``url`` (waiting up to ``connect_seconds`` for a first connection)
        and apply every migration; raises StoreUnavailable. ``name``: see
        bridge.stores.base.process_name."""
        pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True, "application_name": name},
            # A connection the server dropped (a restart, a failover) is replaced before
            # use rather than failing a request: one round trip per checkout.
            check=AsyncConnectionPool.check_connection,
            open=False,
            name="bridge",
        )
        try:
            await pool.open(wait=True, timeout=connect_seconds)
            opened = cls(pool, url)
            await opened.migrate()
        except (psycopg.Error, TimeoutError, OSError) as error:
            await pool.close()
            raise _unavailable(url, error) from error
        return opened

    async def close(self) -> None:
        await self._pool.close()

    async def fetch(self, sql: str, args: Iterable[Any] = ()) -> list[Row]:
        try:
            async with self._pool.connection() as conn:
                cursor = conn.cursor(row_factory=_named_rows)
                await cursor.execute(sql.replace("?", "%s"), tuple(args))
                return list(await cursor.fetchall()) if cursor.description else []
        except (psycopg.OperationalError, PoolTimeout) as error:
            # The server went away (a restart, a failover) or no connection came in time.
            raise _unavailable(self._url, error) from error

    async def migrate(self) -> list[int]:
        """Apply numbered, forward-only migrations not yet applied, each in a transaction,
        under an advisory lock so processes starting together do not race."""
        applied: list[int] = []
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            cursor = await conn.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in await cursor.fetchall()}
            for version, script in migrations(__package__):
                if version in done:
                    continue
                await conn.execute(script.encode())
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES (%s, %s)", (version, now_text())
                )
                applied.append(version)
        return applied

    # --- health -----------------------------------------------------------------------

    async def check_writable(self) -> str:
        """Write in a transaction that is rolled back: nothing is left behind."""
        try:
            async with self._pool.connection() as conn, conn.transaction(force_rollback=True):
                await conn.execute(
                    "INSERT INTO settings (key, value) VALUES (%s, %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    ("doctor_write_probe", "rolled back"),
                )
        except (psycopg.Error, OSError) as error:
            raise _unavailable(self._url, error) from error
        return f"PostgreSQL at {where(self._url)} writable, migrations applied"


def _unavailable(url: str, error: BaseException) -> StoreUnavailable:
    return StoreUnavailable(
        f"PostgreSQL at {where(url)}: {type(error).__name__}: {str(error).strip()[:300]}",
        "Check that the server runs and accepts connections from here, that the database "
        "exists, and that DATABASE_URL's user may create tables in it "
        "(postgresql://user:password@host:5432/dbname).",
    )
