"""The expected schema of a version: the migration files applied to an empty scratch
database by the runner ``up`` uses, read, and the database dropped, whatever happened.

Where the scratch database lives, in order: the environment's ``scratch_database_url``; the
managed server, when dbops' role may create databases there (CREATEDB); else the embedded
PostgreSQL. The managed database itself is only read (its server's major, the role's
right): no lock, no snapshot, nothing written.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from commands.config import EnvironmentSettings
from commands.errors import DatabaseError, ScratchFailed
from commands.pg.catalog import read_schema
from commands.migrations import ScratchDatabase
from commands.pg.connect import connect, describe, environment, run_once
from commands.pg.control import ensure_control_schema
from commands.pg.runner import PgMigrationRunner, Timeouts
from commands.pg.state import PgVersionStore
from commands.redact import mask_url
from commands.schema.model import Schema
from commands.sql.sqlfile import SqlFile

SCRATCH_PREFIX = "dbops_scratch_"
EMBEDDED = "embedded PostgreSQL"
MANAGED = "the managed server"
CONFIGURED = "scratch_database_url"
# Shared by every dbops process on this machine: the wheel's server is joined, not restarted.
EMBEDDED_DATA = Path(tempfile.gettempdir()) / "dbops-scratch-pg" / "data"


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


class PgScratch:
    """Builds expected schemas for one environment. Contract: ``build`` returns the schema of
    an empty database after ``files`` (version, parsed up file or None) were applied in
    order, and where it was built; it leaves no database behind, also when it raises."""

    def __init__(self, env: EnvironmentSettings) -> None:
        self.env = env

    def live(self) -> Schema:
        """The managed database's schema, read once (no lock, nothing written)."""
        with connect(self.env.database_url, database=environment(self.env.name)) as conn:
            return read_schema(conn, version_schema=self.env.migrations_schema, version_table=self.env.migrations_table)

    def _server(self) -> tuple[str, str]:
        """(URL of a database on a server where a scratch database may be created, where that is)."""
        if self.env.scratch_database_url:
            return self.env.scratch_database_url, CONFIGURED
        with connect(self.env.database_url, database=environment(self.env.name)) as conn:
            may = conn.execute("SELECT rolcreatedb OR rolsuper FROM pg_catalog.pg_roles "
                               "WHERE rolname = current_user").fetchone()
        if may and may[0]:
            return self.env.database_url, MANAGED
        from commands.pg.embedded import start  # the wheel is loaded only when it is needed
        return _with_database(start(EMBEDDED_DATA), "postgres"), EMBEDDED

    @contextmanager
    def database(self) -> Iterator[ScratchDatabase]:
        """An empty scratch database for one use, dropped on exit, also when the body raises."""
        server, where = self._server()
        name = SCRATCH_PREFIX + secrets.token_hex(6)
        place = f"{where} ({mask_url(server)})" if where == CONFIGURED else where
        try:
            with connect(server, database=place) as admin:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as err:
            raise DatabaseError(f"Could not create a scratch database on {place}: {describe(err)}") from None
        try:
            yield ScratchDatabase(url=_with_database(server, name), where=where, place=place)
        finally:
            self._drop(server, name, place)

    def build(self, files: Sequence[tuple[int, str, SqlFile | None]]) -> tuple[Schema, str]:
        with self.database() as scratch:
            with connect(scratch.url, database=scratch.place) as conn:
                self._apply(conn, files)
                return read_schema(conn, version_schema=self.env.migrations_schema,
                                   version_table=self.env.migrations_table), scratch.where

    def _apply(self, conn: psycopg.Connection, files: Sequence[tuple[int, str, SqlFile | None]]) -> None:
        schema = self.env.migrations_schema
        if schema:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        store = PgVersionStore(conn, schema=schema or "public", table=self.env.migrations_table)
        store.ensure()
        runner = PgMigrationRunner(conn, store, Timeouts(lock_timeout=self.env.lock_timeout,
                                                         statement_timeout=self.env.statement_timeout))
        for version, label, sqlfile in files:
            error = runner.apply(sqlfile, version)
            if error is not None:
                where = f" (line {error.line})" if error.line else ""
                raise ScratchFailed(f"The migration files do not apply to an empty database: {label}{where} "
                                    f"failed: {error.message}. The expected schema of this version cannot be "
                                    "built; fix the file (or `/migrate validate`), then check again.")

    @staticmethod
    def _drop(server: str, name: str, place: str) -> None:
        try:
            with connect(server, database=place) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        except psycopg.Error as err:
            raise DatabaseError(f"Could not drop the scratch database {name} on {place}: {describe(err)}; "
                                "drop it by hand.") from None


class PgSchemaCache:
    """Expected schemas in the control database, keyed by the sha256 of the files they were
    built from. ``get`` counts a use (``uses``, ``used_at``): the table shows the cache at work."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, files_sha256: str) -> tuple[Schema, str] | None:
        ensure_control_schema(self.url)
        rows = run_once(self.url,
                        "UPDATE dbops_schema_cache SET uses = uses + 1, used_at = now() "
                        "WHERE files_sha256 = %(key)s RETURNING schema, built_on",
                        {"key": files_sha256}, failure="could not read the schema cache", pooled=False)
        return (Schema.from_json(rows[0][0]), rows[0][1]) if rows else None

    def put(self, files_sha256: str, version: int, schema: Schema, built_on: str) -> None:
        run_once(self.url,
                 "INSERT INTO dbops_schema_cache (files_sha256, version, server_major, built_on, schema) "
                 "VALUES (%(key)s, %(version)s, %(major)s, %(built_on)s, %(schema)s) "
                 "ON CONFLICT (files_sha256) DO NOTHING",
                 {"key": files_sha256, "version": version, "major": schema.server_major or 0,
                  "built_on": built_on, "schema": Jsonb(schema.to_json())},
                 failure="could not write the schema cache", pooled=False)
