"""A real PostgreSQL server for the tests: Debian's ``postgresql``, a throwaway cluster.

``initdb`` refuses to run as root, so as root the cluster is made and run as the
``postgres`` user the package creates. It listens on a free loopback port with settings
for speed (no fsync), and each test gets a database of its own. ``TEST_POSTGRES_URL``
points the tests at a server of your own instead (its user must be able to create
databases). Without either, the tests that need PostgreSQL are skipped, except under CI
(``CI`` set), where they fail: `.ci/run` installs it (``sudo apt-get install postgresql``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

USER = "bridge"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _bin() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


def require_postgres() -> None:
    if os.environ.get("TEST_POSTGRES_URL") or _bin() is not None:
        return
    message = "PostgreSQL is not installed: sudo apt-get install postgresql"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class Cluster:
    """A PostgreSQL cluster in a temporary directory, on 127.0.0.1:<port>."""

    def __init__(self) -> None:
        binaries = _bin()
        assert binaries is not None
        self.bin = binaries
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bridge-pg-"))
        self.data = self.dir / "data"
        self.as_root = os.geteuid() == 0

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        subprocess.run(  # noqa: S603 - PostgreSQL's own programs, arguments made here
            [*prefix, *command], check=True, capture_output=True, timeout=120
        )

    def start(self) -> str:
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", USER,
            "--auth=trust", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        self._serve()
        return self.url("postgres")

    def _serve(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.dir / "log"), "-w", "-t", "60", "start",
        )  # fmt: skip

    def restart(self) -> None:
        """Restart the server (clients cut off; what was committed stays: the tests'
        speed settings make a crash lose commits, which is not what this stands for)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        self._serve()

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def new_database(server_url: str) -> str:
    """A fresh, empty database on the server; its URL."""
    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A running PostgreSQL server for the whole run: its URL (the maintenance database)."""
    require_postgres()
    given = os.environ.get("TEST_POSTGRES_URL")
    if given:
        yield given
        return
    cluster = Cluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh database of this test's own on the server: its URL."""
    return new_database(postgres_server)
