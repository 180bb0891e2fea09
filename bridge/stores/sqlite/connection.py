"""The SQLite connection: opening it in WAL mode, migrations, and the one way to run SQL.

The connection runs in autocommit mode; every multi-row change is either one statement or
an explicit transaction.

Every statement goes through :meth:`SqliteConnection.fetch`: one trip to aiosqlite's
thread, and the sqlite3 cursor is created and dropped in that thread. A cursor left to
die in the event loop's thread resets its statement there, and SQLite answers "bad
parameter or other API misuse" to whichever query the database thread is running with
that statement.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

import aiosqlite

from bridge.store import StoreUnavailable
from bridge.stores.base import Database, Row, migrations, now_text


class SqliteConnection(Database):
    """Holds the connection; the tables' typed functions are mixed in above it."""

    def __init__(self, db: aiosqlite.Connection, path: Path, created: bool) -> None:
        self._db = db
        self.path = path
        self._created = created

    @classmethod
    async def open(cls, path: Path) -> Self:
        """Open (creating if needed) the database at ``path``, with every migration applied.

        Raises StoreUnavailable, saying what to do, when it cannot be created or written.
        """
        db: aiosqlite.Connection | None = None
        try:
            path, created = _make_room(path)
            db = await aiosqlite.connect(path, isolation_level=None)
            db.row_factory = sqlite3.Row
            opened = cls(db, path, created)
            for pragma in (
                "journal_mode=WAL",
                "foreign_keys=ON",
                "busy_timeout=5000",
                "synchronous=NORMAL",
            ):
                await opened.fetch(f"PRAGMA {pragma}")
            await opened.migrate()
        except (OSError, sqlite3.Error) as error:
            if db is not None:
                await db.close()
            raise _unavailable(path, error) from error
        return opened

    async def close(self) -> None:
        await self._db.close()

    async def fetch(self, sql: str, args: Iterable[Any] = ()) -> list[Row]:
        """Run one statement and return its rows (``RETURNING`` rows for a change)."""
        return list(await self._db.execute_fetchall(sql, tuple(args)))

    async def migrate(self) -> list[int]:
        """Apply numbered, forward-only migrations not yet applied; return their numbers."""
        await self.fetch(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = {row[0] for row in await self.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for version, script in migrations(__package__):
            if version in done:
                continue
            async with self._db.executescript(
                f"BEGIN IMMEDIATE;\n{script}\n"
                f"INSERT INTO schema_migrations VALUES ({version}, '{now_text()}');\nCOMMIT;"
            ):
                pass
            applied.append(version)
        return applied

    # --- health -----------------------------------------------------------------------

    async def check_writable(self) -> str:
        """Take the write lock and write, then roll back: nothing is left behind."""
        try:
            await self.fetch("BEGIN IMMEDIATE")
            try:
                await self.fetch(
                    "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                    ("doctor_write_probe", "rolled back"),
                )
            finally:
                await self.fetch("ROLLBACK")
        except (OSError, sqlite3.Error) as error:
            raise _unavailable(self.path, error) from error
        return (
            f"{self.path} writable{' (created now)' if self._created else ''}, migrations applied"
        )


def _make_room(path: Path) -> tuple[Path, bool]:
    """The database's absolute path, its folder created if needed; True if it is new."""
    path = path.expanduser().absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, not path.exists()


def _unavailable(path: Path, error: BaseException) -> StoreUnavailable:
    if isinstance(error, sqlite3.OperationalError) and "locked" in str(error):
        return StoreUnavailable(
            f"{path}: {error}",
            "Another process has held a write lock on the database for over 5 seconds: find "
            "it (`fuser` or `lsof` on the file) and stop it, or give this bridge its own "
            "DATABASE_URL.",
        )
    return StoreUnavailable(
        f"{path}: {_failure(path, error)}",
        f"The bridge must be able to create and write {path.name} and its -wal/-shm files "
        f"in {path.parent}: create that directory and give the user running the bridge "
        "write permission on it (and the file), or point DATABASE_URL at a writable place "
        "(sqlite:///data/bridge.db is relative to the working directory, "
        "sqlite:////var/lib/flex-bridge/bridge.db absolute).",
    )


def _failure(path: Path, error: BaseException) -> str:
    """What went wrong opening ``path``, naming a parent that is a file when there is one."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file, not a directory"
            break
    return f"{type(error).__name__}: {error}"
