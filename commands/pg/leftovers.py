"""Removing what a failed migration left behind, when that loses no data: an index (an
INVALID one from a failed CREATE INDEX CONCURRENTLY), or a table it created that is empty."""

from __future__ import annotations

import psycopg
from psycopg import sql

from commands.errors import CommandError, DatabaseError
from commands.pg.connect import describe


def _drop(kind: str, schema: str, name: str) -> sql.Composed:
    target = sql.Identifier(schema, name)
    if kind == "index":
        # CONCURRENTLY: no lock that blocks the application's writes on the table it indexes.
        return sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(target)
    if kind == "table":
        return sql.SQL("DROP TABLE {}").format(target)
    raise CommandError(f"dbops removes only indexes and empty tables, not a {kind}.")


class PgLeftovers:
    """``Leftovers`` on one autocommit connection."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def statement(self, kind: str, schema: str, name: str) -> str:
        return _drop(kind, schema, name).as_string(self.conn) + ";"

    def drop(self, kind: str, schema: str, name: str) -> None:
        statement = _drop(kind, schema, name)
        try:
            if kind == "index":
                self.conn.execute(statement)  # autocommit: CONCURRENTLY cannot run in a transaction
                return
            with self.conn.transaction():
                # Empty when the plan was made is not enough: it must be empty when it goes.
                self.conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                    sql.Identifier(schema, name)))
                if self.conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(
                        sql.Identifier(schema, name))).fetchone()[0]:
                    raise CommandError(f"{schema}.{name} is no longer empty: it was not dropped, and nothing "
                                       "else was changed.")
                self.conn.execute(statement)
        except psycopg.Error as err:
            raise DatabaseError(f"Could not remove {kind} {schema}.{name}: {describe(err)}") from None
