"""Rows written since a snapshot: row estimates, counts, export into a bundle, re-import.

Every statement is built with psycopg.sql. Measuring only reads (a read-only session), each
count under COUNT_TIMEOUT: a table that cannot be counted in time, or that the role may not
read, is reported as such, never waited on. Export is one read-only REPEATABLE READ
transaction of ``COPY (SELECT …) TO STDOUT`` per table, streamed chunk by chunk into the
bundle; re-import is one transaction per table: the rows COPY'd into a temporary table, then
``INSERT … ON CONFLICT DO NOTHING`` (a row whose key is already there is skipped, and
counted), and the table's serial/identity sequences moved past the re-imported keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Iterator, Mapping

import psycopg
from psycopg import sql

from commands.errors import SnapshotFailed
from commands.pg.connect import connect, describe, environment
from commands.preserve.results import LossEstimate, TableLoss, TableReimport

CONVENTION = ("created_at", "updated_at", "inserted_at", "modified_at")
STAMP_TYPES = ("timestamp with time zone", "timestamp without time zone")
COUNT_TIMEOUT = "5s"

# The planner's own estimate (estimate_rel_size): reltuples per page times the pages the table
# has now, so growth since the last ANALYZE shows; NULL when the table was never analysed.
_ESTIMATES = """
SELECT n.nspname || '.' || c.relname,
       CASE WHEN c.reltuples < 0 THEN NULL
            WHEN c.relpages = 0 THEN CASE WHEN pg_relation_size(c.oid) = 0 THEN 0 END
            ELSE round(c.reltuples / c.relpages
                       * (pg_relation_size(c.oid) / current_setting('block_size')::int))::bigint END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
ORDER BY 1"""

_TABLES = """
SELECT n.nspname, c.relname, has_table_privilege(c.oid, 'SELECT'),
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid
               AND i.indpred IS NULL),
       array(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
             AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum),
       array(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = c.oid
             AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum),
       array(SELECT DISTINCT rn.nspname || '.' || rc.relname FROM pg_constraint k
             JOIN pg_class rc ON rc.oid = k.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
             WHERE k.conrelid = c.oid AND k.contype = 'f' AND k.confrelid <> c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname !~ '^pg_'
  AND n.nspname <> 'information_schema'
ORDER BY 1, 2"""


def row_estimates(conn: psycopg.Connection) -> dict[str, int | None]:
    """Every user table's row estimate (schema.name -> rows; None: never analysed). Catalog
    reads only: cheap whatever the tables' size."""
    return dict(conn.execute(_ESTIMATES).fetchall())


@dataclass(frozen=True, kw_only=True)
class _Table:
    schema: str
    name: str
    readable: bool
    keyed: bool
    columns: tuple[tuple[str, str], ...]  # (name, type) in table order, generated columns left out
    references: tuple[str, ...]
    stamps: tuple[str, ...] = ()

    @property
    def table(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


def _stamps(table: _Table, configured: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The table's insert/update time columns: those the configuration names for it (by
    schema.name or name), else the conventional names; of a timestamp type either way."""
    types = dict(table.columns)
    named = configured.get(table.table, configured.get(table.name))
    wanted = named if named is not None else CONVENTION
    return tuple(c for c in wanted if types.get(c) in STAMP_TYPES)


def _tables(conn: psycopg.Connection, configured: Mapping[str, tuple[str, ...]],
            exclude: tuple[str, ...]) -> list[_Table]:
    found = []
    for schema, name, readable, keyed, names, types, references in conn.execute(_TABLES).fetchall():
        if name in exclude:
            continue
        table = _Table(schema=schema, name=name, readable=readable, keyed=keyed,
                       columns=tuple(zip(names, types)), references=tuple(references))
        found.append(_Table(**{**table.__dict__, "stamps": _stamps(table, configured)}))
    return _parents_first(found)


def _parents_first(tables: list[_Table]) -> list[_Table]:
    """Tables ordered so that one a foreign key points at comes before the table that points
    (re-imported rows may reference rows re-imported before them); cycles keep their order."""
    by_name = {t.table: t for t in tables}
    ordered: list[_Table] = []
    placed: set[str] = set()

    def place(table: _Table, path: frozenset[str]) -> None:
        if table.table in placed or table.table in path:
            return
        for parent in table.references:
            if parent in by_name:
                place(by_name[parent], path | {table.table})
        placed.add(table.table)
        ordered.append(table)

    for table in tables:
        place(table, frozenset())
    return ordered


def _newer(table: _Table, since: datetime) -> sql.Composed:
    return sql.SQL(" OR ").join(sql.SQL("{} > {}").format(sql.Identifier(c), sql.Literal(since)) for c in table.stamps)


class PgChangedRows:
    """The ``ChangedRows`` contract for one environment's database."""

    def __init__(self, url: str, *, env_name: str) -> None:
        self.url = url
        self.database = environment(env_name)

    def _connect(self, role: str) -> psycopg.Connection:
        return connect(self.url, database=self.database, application_name=f"dbops-{role}")

    def estimates(self) -> dict[str, int | None]:
        with self._connect("measure") as conn:
            return row_estimates(conn)

    def measure(self, since: datetime, configured: Mapping[str, tuple[str, ...]], exclude: tuple[str, ...],
                recorded: Mapping[str, int | None] | None) -> LossEstimate:
        counted, uncountable, untracked = [], [], []
        with self._connect("measure") as conn:
            conn.execute("SET default_transaction_read_only = on")
            conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(COUNT_TIMEOUT)))
            live = row_estimates(conn)
            for table in _tables(conn, configured, exclude):
                if not table.stamps:
                    if recorded is not None and (table.table not in recorded or (
                            recorded[table.table] is not None and live.get(table.table) is not None
                            and recorded[table.table] != live[table.table])):
                        untracked.append(table.table)
                    continue
                if not table.readable:
                    uncountable.append(TableLoss(table=table.table, columns=table.stamps,
                                                 why="the database role may not read it"))
                    continue
                try:
                    rows = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
                        table.ident, _newer(table, since))).fetchone()[0]
                except psycopg.errors.QueryCanceled:
                    uncountable.append(TableLoss(table=table.table, columns=table.stamps,
                                                 why=f"not counted within {COUNT_TIMEOUT}"))
                    continue
                except psycopg.errors.InsufficientPrivilege as err:
                    uncountable.append(TableLoss(table=table.table, columns=table.stamps, why=describe(err)))
                    continue
                if rows:
                    counted.append(TableLoss(table=table.table, columns=table.stamps, rows=rows))
        counted.sort(key=lambda t: (-(t.rows or 0), t.table))
        return LossEstimate(since=since, counted=tuple(counted), uncountable=tuple(uncountable),
                            untracked=tuple(untracked), estimates_known=recorded is not None)

    def export(self, since: datetime, configured: Mapping[str, tuple[str, ...]], exclude: tuple[str, ...],
               sink) -> None:
        """Write the rows newer than ``since`` of every table with time columns that the role
        may read into ``sink`` (``BundleSink``), parents before the tables that point at them,
        from one consistent view of the database."""
        try:
            self._export(since, configured, exclude, sink)
        except psycopg.Error as err:
            raise SnapshotFailed(f"{self.database}: the rows written since the snapshot could not be read: "
                                 f"{describe(err)}. Nothing was restored.") from None

    def _export(self, since: datetime, configured: Mapping[str, tuple[str, ...]], exclude: tuple[str, ...],
                sink) -> None:
        with self._connect("preserve") as conn:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                for table in _tables(conn, configured, exclude):
                    if not table.stamps or not table.readable:
                        continue
                    columns = sql.SQL(", ").join(sql.Identifier(c) for c, _ in table.columns)
                    sink.table({"table": table.table, "schema": table.schema, "name": table.name,
                                "columns": [list(c) for c in table.columns], "stamps": list(table.stamps)})
                    with conn.cursor() as cursor:
                        with cursor.copy(sql.SQL("COPY (SELECT {} FROM {} WHERE {}) TO STDOUT (FORMAT csv)").format(
                                columns, table.ident, _newer(table, since))) as copy:
                            for data in copy:
                                sink.rows(bytes(data))
                        sink.end(max(cursor.rowcount, 0))

    def reimport(self, tables: Iterable[tuple[dict, Iterator[bytes]]]) -> list[TableReimport]:
        """Each table of a bundle put back in a transaction of its own (``header``: the bundle's
        table, with ``rows``, the count it holds). A table that no longer fits the rows (gone,
        a column gone or of another type, no key to tell a duplicate by), or whose rows the
        database refuses, keeps them all in the bundle, saying why."""
        done = []
        with self._connect("reimport") as conn:
            for header, chunks in tables:
                done.append(self._one(conn, header, chunks))
        return done

    def _one(self, conn: psycopg.Connection, header: dict, chunks: Iterator[bytes]) -> TableReimport:
        rows, name = header["rows"], header["table"]
        why = self._misfit(conn, header)
        if why is not None:
            for _ in chunks:  # read past them: they stay in the bundle
                pass
            return TableReimport(table=name, exported=rows, unfit=rows, why=why)
        target = sql.Identifier(header["schema"], header["name"])
        columns = sql.SQL(", ").join(sql.Identifier(c) for c, _ in header["columns"])
        try:
            with conn.transaction():
                conn.execute(sql.SQL("CREATE TEMPORARY TABLE dbops_preserved ON COMMIT DROP AS SELECT {} FROM {} "
                                     "WITH NO DATA").format(columns, target))
                with conn.cursor() as cursor:
                    into = sql.SQL("COPY dbops_preserved ({}) FROM STDIN (FORMAT csv)").format(columns)
                    with cursor.copy(into) as copy:
                        for chunk in chunks:
                            copy.write(chunk)
                    cursor.execute(sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM dbops_preserved "
                                           "ON CONFLICT DO NOTHING").format(target, columns, columns))
                    imported = max(cursor.rowcount, 0)
                self._advance_sequences(conn, header)
        except psycopg.Error as err:
            for _ in chunks:
                pass
            return TableReimport(table=name, exported=rows, unfit=rows,
                                 why=f"the database refused them: {describe(err)}")
        return TableReimport(table=name, exported=rows, imported=imported, conflicts=rows - imported)

    @staticmethod
    def _misfit(conn: psycopg.Connection, header: dict) -> str | None:
        found = [t for t in _tables(conn, {}, ()) if t.table == header["table"]]
        if not found:
            return "the table no longer exists"
        live = dict(found[0].columns)
        for column, kind in header["columns"]:
            if column not in live:
                return f"column {column} no longer exists"
            if live[column] != kind:
                return f"column {column} is now {live[column]} (was {kind})"
        if not found[0].keyed:
            return "it has no primary key or unique index to tell a row already there by"
        return None

    @staticmethod
    def _advance_sequences(conn: psycopg.Connection, header: dict) -> None:
        """Move each serial or identity sequence of the table past the largest re-imported
        value, so the application's next insert does not collide with a row put back."""
        qualified = sql.Identifier(header["schema"], header["name"]).as_string(conn)
        for column, _ in header["columns"]:
            sequence = conn.execute("SELECT pg_get_serial_sequence(%s, %s)", (qualified, column)).fetchone()[0]
            if sequence is None:
                continue
            conn.execute(sql.SQL("SELECT setval({seq}::regclass, m) FROM (SELECT max({col}) AS m FROM {tbl}) s "
                                 "WHERE m > coalesce(pg_sequence_last_value({seq}::regclass), 0)").format(
                seq=sql.Literal(sequence), col=sql.Identifier(column),
                tbl=sql.Identifier(header["schema"], header["name"])))
