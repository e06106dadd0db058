"""One operation's view of a managed database: its version table, lock and runner."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Callable, Iterator

import psycopg
from psycopg import sql

from commands.config import EnvironmentSettings
from commands.errors import DatabaseError, DatabaseUnreachable, privilege_error
from commands.pg.connect import connect, connection_lost, describe, environment
from commands.redact import mask_url
from commands.pg.lock import PgAdvisoryLock, golang_migrate_lock_key
from commands.pg.state import PgVersionStore
from commands.snapshot.results import TableRows

if TYPE_CHECKING:
    from commands.pg.blockers import PgBlockers
    from commands.pg.changed_rows import PgChangedRows
    from commands.pg.leftovers import PgLeftovers
    from commands.pg.drills import PgDrillLog
    from commands.pg.runner import PgMigrationRunner
    from commands.pg.scratch import PgSchemaCache, PgScratch
    from commands.rollback.results import OrphanCount


ROW_CHECKS = 2000


@dataclass(frozen=True)
class PgLiveObjects:
    """``LiveObjects`` read once from the catalog at the start of a run."""

    existing: frozenset[str]
    empty: frozenset[str]

    def exists(self, table: str) -> bool:
        return table in self.existing

    def has_rows(self, table: str) -> bool:
        return table not in self.empty


class PgInspector:
    def __init__(self, conn) -> None:
        self.conn = conn

    def largest_tables(self, limit: int) -> list[TableRows]:
        tables = self.conn.execute(
            """SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind IN ('r', 'p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
               ORDER BY pg_total_relation_size(c.oid) DESC, 1, 2 LIMIT %s""", (limit,)).fetchall()
        return [TableRows(table=f"{schema}.{name}",
                          rows=self.conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                              sql.Identifier(schema, name))).fetchone()[0])
                for schema, name in tables]

    def holds_tables(self, besides: tuple[str, str]) -> bool:
        return self.conn.execute(
            """SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind IN ('r', 'p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
               AND (n.nspname, c.relname) <> (%s, %s))""", besides).fetchone()[0]

    def table_bytes(self, tables: list[str]) -> dict[str, int]:
        sizes = {}
        for name in tables:
            row = self.conn.execute(
                """SELECT pg_total_relation_size(c.oid) FROM pg_class c
                   WHERE c.oid = to_regclass(%s) AND c.relkind IN ('r', 'p', 'm')""", (name,)).fetchone()
            if row is not None:
                sizes[name] = row[0]
        return sizes

    def live_objects(self, tables: list[str]) -> PgLiveObjects:
        found = self.conn.execute(
            """SELECT t.name, c.relkind::text, n.nspname, c.relname FROM unnest(%s::text[]) AS t(name)
               JOIN pg_class c ON c.oid = to_regclass(t.name) JOIN pg_namespace n ON n.oid = c.relnamespace""",
            (tables,)).fetchall()
        existing = {name for name, *_ in found}
        # Past ROW_CHECKS tables (or for a view, a foreign table …) rows are not looked for, and
        # the table counts as holding rows: unknown is never taken for empty.
        checked = [(name, schema, rel) for name, kind, schema, rel in found if kind in ("r", "p", "m")][:ROW_CHECKS]
        empty = {name for name, schema, rel in checked if self._empty(schema, rel)}
        return PgLiveObjects(existing=frozenset(existing), empty=frozenset(empty))

    def _empty(self, schema: str, table: str) -> bool:
        try:
            return not self.conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(
                sql.Identifier(schema, table))).fetchone()[0]
        except psycopg.errors.InsufficientPrivilege:
            return False  # a table dbops may not read is not known to be empty (autocommit: nothing aborted)

    def invalid_indexes(self, sqlfile) -> tuple:
        from commands.pg.invalid_indexes import invalid_indexes  # only a dirty alert looks
        return invalid_indexes(self.conn, sqlfile)

    def foreign_key_orphans(self) -> list[OrphanCount]:
        from commands.pg.integrity import orphaned_rows  # a rollback's checklist: not every command's
        from commands.rollback.results import OrphanCount
        return [OrphanCount(constraint=o.constraint, table=o.table, columns=o.columns, references=o.references,
                            rows=o.rows) for o in orphaned_rows(self.conn)]


@dataclass
class PgEnvironment:
    store: PgVersionStore
    lock: PgAdvisoryLock
    inspector: PgInspector
    conn: psycopg.Connection
    lock_timeout: str
    statement_timeout: str
    sampler: Callable[[], psycopg.Connection] | None = None  # a second session, to sample statements' progress
    url: str = ""       # for a second connection (the lock watch); holds credentials: never shown
    database: str = ""  # how errors name it: "environment production"

    @cached_property
    def blockers(self) -> PgBlockers:
        from commands.pg.blockers import PgBlockers  # only a migration and its plan look for blockers
        return PgBlockers(self.conn, self.url, self.database)

    @cached_property
    def leftovers(self) -> PgLeftovers:
        from commands.pg.leftovers import PgLeftovers  # only a recovery removes anything
        return PgLeftovers(self.conn)

    @cached_property
    def runner(self) -> PgMigrationRunner:
        # Made when a migration first runs: what only reads (a status) does not load the runner
        # and the SQL file reader behind it.
        from commands.pg.runner import PgMigrationRunner, Timeouts
        return PgMigrationRunner(self.conn, self.store, Timeouts(lock_timeout=self.lock_timeout,
                                                                 statement_timeout=self.statement_timeout),
                                 sampler=self.sampler)


class PgDatabases:
    """Opens a fresh connection per operation; the lock dies with it if the process does."""

    def __init__(self, *, application_name: str = "dbops") -> None:
        self.application_name = application_name

    @contextmanager
    def open(self, env: EnvironmentSettings) -> Iterator[PgEnvironment]:
        name = environment(env.name)
        conn = connect(env.database_url, database=name, application_name=self.application_name)
        environment_: PgEnvironment | None = None
        try:
            schema = env.migrations_schema or conn.execute("SELECT coalesce(current_schema(), 'public')").fetchone()[0]
            store = PgVersionStore(conn, schema=schema, table=env.migrations_table)
            key = golang_migrate_lock_key(schema=schema, table=env.migrations_table, database_url=env.database_url)
            lock = PgAdvisoryLock(conn, key)
            environment_ = PgEnvironment(store=store, lock=lock, inspector=PgInspector(conn), conn=conn,
                                         lock_timeout=env.lock_timeout, statement_timeout=env.statement_timeout,
                                         sampler=lambda: connect(env.database_url, database=name,
                                                                 application_name=f"{self.application_name}-progress"),
                                         url=env.database_url, database=name)
            yield environment_
        except psycopg.errors.InsufficientPrivilege as err:
            raise privilege_error(describe(err)) from None
        except psycopg.OperationalError as err:
            # The server went away mid-operation (a restart, a failover, a killed session):
            # one clear fault for every surface, not a traceback from wherever it surfaced.
            if not connection_lost(err):
                raise DatabaseError(f"{name}: {describe(err)}") from None
            raise DatabaseUnreachable(f"{name}: lost the connection to {mask_url(env.database_url)} during the "
                                      f"operation: {describe(err)}. The transaction in progress was rolled back by "
                                      "the server; check `/migrate status` before trying again.",
                                      database=name) from None
        finally:
            if environment_ is not None and "blockers" in vars(environment_):
                environment_.blockers.close()  # a lock watch was opened: its connection goes too
            conn.close()

    def scratch(self, env: EnvironmentSettings) -> PgScratch:
        from commands.pg.scratch import PgScratch  # only a drift check builds an expected schema
        return PgScratch(env)

    def schema_cache(self, control_url: str) -> PgSchemaCache:
        from commands.pg.scratch import PgSchemaCache
        return PgSchemaCache(control_url)

    def changed_rows(self, env: EnvironmentSettings) -> PgChangedRows:
        from commands.pg.changed_rows import PgChangedRows  # only a restore's card and its preserved rows
        return PgChangedRows(env.database_url, env_name=env.name)

    def drills(self, control_url: str) -> PgDrillLog:
        from commands.pg.drills import PgDrillLog  # only a drill, a list and a restore's estimate read it
        return PgDrillLog(control_url)
