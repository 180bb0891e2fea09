"""What every backend's connection offers the tables: one way to run a statement.

The tables (:mod:`bridge.stores.handoff`, :mod:`bridge.stores.oauth`) are written once,
in the SQL both SQLite and PostgreSQL speak (``?`` placeholders, ``ON CONFLICT DO
NOTHING``, ``RETURNING``, row values); each backend's connection runs it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Protocol


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def process_name() -> str:
    """A name for this process's database connections (PostgreSQL's ``application_name``):
    unique among the bridge's processes, so the doorbell's rings say who rang (PostgreSQL
    migration 0003), and readable in ``pg_stat_activity``."""
    return f"flex-bridge/{os.getpid()}/{secrets.token_hex(3)}"


def migrations(package: str) -> list[tuple[int, str]]:
    """A backend's numbered migrations (``migrations/NNNN_name.sql`` in ``package``),
    as (number, script), in order."""
    folder = resources.files(package) / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


class Row(Protocol):
    """A result row, read by position or by column name (``dict(row)`` works)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...


class Database:
    """Holds a backend's connection; the tables' typed functions are mixed in above it."""

    async def fetch(self, sql: str, args: Iterable[Any] = ()) -> list[Row]:
        """Run one statement and return its rows (``RETURNING`` rows for a change)."""
        raise NotImplementedError

    async def fetch_one(self, sql: str, args: Iterable[Any] = ()) -> Row | None:
        rows = await self.fetch(sql, args)
        return rows[0] if rows else None

    async def ping(self) -> None:
        await self.fetch("SELECT 1")


def fields(row: Row) -> dict[str, Any]:
    """The row as column name → value (a row iterates its values, not its names)."""
    return {name: row[name] for name in row.keys()}  # noqa: SIM118


def placeholders(count: int) -> str:
    """``?, ?, ?`` for a list of ``count`` values in an ``IN (…)``."""
    return ", ".join("?" * count)


class NamedRow(tuple[Any, ...]):
    """A row that reads like sqlite3.Row: by position, by name, and as a mapping."""

    _names: tuple[str, ...]

    def __new__(cls, values: Iterable[Any], names: tuple[str, ...]) -> NamedRow:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self._names.index(key))
        return super().__getitem__(key)

    def keys(self) -> Iterator[str]:
        return iter(self._names)
