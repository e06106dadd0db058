"""One operation's view of a managed database: its version table, lock and runner."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from commands.config import EnvironmentSettings
from commands.pg.connect import connect
from commands.pg.lock import PgAdvisoryLock, golang_migrate_lock_key
from commands.pg.runner import PgMigrationRunner, Timeouts
from commands.pg.state import PgVersionStore


@dataclass
class PgEnvironment:
    store: PgVersionStore
    lock: PgAdvisoryLock
    runner: PgMigrationRunner


class PgDatabases:
    """Opens a fresh connection per operation; the lock dies with it if the process does."""

    def __init__(self, *, application_name: str = "dbops") -> None:
        self.application_name = application_name

    @contextmanager
    def open(self, env: EnvironmentSettings) -> Iterator[PgEnvironment]:
        conn = connect(env.database_url, application_name=self.application_name)
        try:
            schema = env.migrations_schema or conn.execute("SELECT coalesce(current_schema(), 'public')").fetchone()[0]
            store = PgVersionStore(conn, schema=schema, table=env.migrations_table)
            key = golang_migrate_lock_key(schema=schema, table=env.migrations_table, database_url=env.database_url)
            lock = PgAdvisoryLock(conn, key)
            runner = PgMigrationRunner(conn, store, Timeouts(lock_timeout=env.lock_timeout,
                                                             statement_timeout=env.statement_timeout))
            yield PgEnvironment(store=store, lock=lock, runner=runner)
        finally:
            conn.close()
