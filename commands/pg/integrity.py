"""Foreign-key integrity: the guide's "Verify Data Integrity After Rollback", for every key.

The guide checks two keys by hand (``NOT EXISTS (SELECT 1 FROM organizations ...)``); this
reads every foreign key from ``pg_constraint`` and runs the same query for each. A database
can hold rows that violate its own foreign keys when a restore ran with
``session_replication_role = replica``, when triggers were disabled, or when a key was added
``NOT VALID`` (or, from PostgreSQL 18, ``NOT ENFORCED``); all of those keys are checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
from psycopg import pq, sql

from commands.errors import DatabaseError
from commands.pg.connect import describe

FOREIGN_KEY_VIOLATION = "23503"
DEPENDENT_OBJECTS_STILL_EXIST = "2BP01"


@dataclass(frozen=True, kw_only=True)
class Orphans:
    """One foreign key and how many child rows break it.

    ``table`` and ``references`` are display names: schema-qualified unless in ``public``,
    double-quoted where PostgreSQL would need it (``"Order Items"``). ``columns`` and
    ``referenced_columns`` are the columns' names as stored, in key order.
    """

    constraint: str
    table: str
    columns: tuple[str, ...]
    references: str
    referenced_columns: tuple[str, ...]
    rows: int  # child rows whose key has no parent row (MATCH SIMPLE: keys with a NULL never do)


@dataclass(frozen=True, kw_only=True)
class _ForeignKey:
    name: str
    schema: str
    table: str
    columns: tuple[str, ...]
    partitioned: bool
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]
    ref_partitioned: bool
    match_full: bool
    display: str
    ref_display: str


# conparentid = 0 keeps one row per key: PostgreSQL adds a clone, pointing at the declared
# key, for every partition of a partitioned child and of a partitioned parent.
_FOREIGN_KEYS = sql.SQL("""
SELECT c.conname, cn.nspname, cl.relname,
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.n),
       cl.relkind = 'p',
       pn.nspname, pl.relname,
       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.n),
       pl.relkind = 'p',
       c.confmatchtype = 'f',
       CASE WHEN cn.nspname = 'public' THEN '' ELSE quote_ident(cn.nspname) || '.' END || quote_ident(cl.relname),
       CASE WHEN pn.nspname = 'public' THEN '' ELSE quote_ident(pn.nspname) || '.' END || quote_ident(pl.relname)
FROM pg_constraint c
JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_namespace cn ON cn.oid = cl.relnamespace
JOIN pg_class pl ON pl.oid = c.confrelid JOIN pg_namespace pn ON pn.oid = pl.relnamespace
WHERE c.contype = 'f' AND c.conparentid = 0
  AND cn.nspname <> 'information_schema' AND cn.nspname NOT LIKE 'pg\\_%' {only_named}
ORDER BY c.conname, cn.nspname, cl.relname
""")


def _foreign_keys(conn: psycopg.Connection, name: str | None = None) -> list[_ForeignKey]:
    only_named = sql.SQL("AND c.conname = {}").format(name) if name is not None else sql.SQL("")
    rows = conn.execute(_FOREIGN_KEYS.format(only_named=only_named)).fetchall()
    return [_ForeignKey(name=r[0], schema=r[1], table=r[2], columns=tuple(r[3]), partitioned=r[4],
                        ref_schema=r[5], ref_table=r[6], ref_columns=tuple(r[7]), ref_partitioned=r[8],
                        match_full=r[9], display=r[10], ref_display=r[11]) for r in rows]


def _count_orphans(fk: _ForeignKey) -> sql.Composed:
    # ONLY as PostgreSQL's own check does (RI_Initial_Check): a key on an inheritance parent
    # binds that table's rows alone; a partitioned table has no rows but its partitions'.
    def source(schema: str, table: str, partitioned: bool, alias: str) -> sql.Composed:
        only = sql.SQL("") if partitioned else sql.SQL("ONLY ")
        return sql.SQL("{}{} AS {}").format(only, sql.Identifier(schema, table), sql.Identifier(alias))

    keys = [sql.Identifier("child", column) for column in fk.columns]
    if fk.match_full:  # a partly NULL key matches nothing, so only an all-NULL key is exempt
        has_key = sql.SQL("NOT ({})").format(sql.SQL(" AND ").join(sql.SQL("{} IS NULL").format(k) for k in keys))
    else:
        has_key = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(k) for k in keys)
    matches = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier("parent", ref), key) for ref, key in zip(fk.ref_columns, keys))
    return sql.SQL("SELECT count(*) FROM {} WHERE {} AND NOT EXISTS (SELECT 1 FROM {} WHERE {})").format(
        source(fk.schema, fk.table, fk.partitioned, "child"), has_key,
        source(fk.ref_schema, fk.ref_table, fk.ref_partitioned, "parent"), matches)


def orphaned_rows(conn: psycopg.Connection) -> list[Orphans]:
    """Every foreign key outside the system schemas, with its count of orphaned child rows.

    All keys are returned, 0 included, most orphans first, then by constraint name. Reads
    only, in one read-only snapshot when ``conn`` is not already in a transaction; each key
    costs a scan of its child table. PostgreSQL errors (no SELECT privilege on a table, a
    statement timeout) raise ``DatabaseError``.
    """
    fk: _ForeignKey | None = None
    try:
        idle = conn.info.transaction_status == pq.TransactionStatus.IDLE
        with conn.transaction():
            if idle:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            found = []
            for fk in _foreign_keys(conn):
                (rows,) = conn.execute(_count_orphans(fk)).fetchone()
                found.append(Orphans(constraint=fk.name, table=fk.display, columns=fk.columns,
                                     references=fk.ref_display, referenced_columns=fk.ref_columns, rows=rows))
    except psycopg.Error as err:
        during = f" {fk.name} on {fk.display}" if fk is not None else "s"
        raise DatabaseError(f"Could not check foreign key{during}: {describe(err)}") from None
    return sorted(found, key=lambda o: (-o.rows, o.constraint, o.table))


def _side(table: str, columns: tuple[str, ...]) -> str:
    if len(columns) == 1:
        return f"{table}.{columns[0]}"
    return f"{table}({', '.join(columns)})"


# PostgreSQL's detail line for 2BP01 (lc_messages = English); the only place it names the key.
_DEPENDS_ON = re.compile(r"^constraint (?P<name>.+?) on table .+? depends on ", re.MULTILINE)


def dependency_of(conn: psycopg.Connection, sqlstate: str, constraint: str | None, *,
                  detail: str | None = None) -> str | None:
    """The foreign key behind a failed statement, as a sentence saying what to do first.

    ``sqlstate`` and ``constraint`` come from the error (``err.sqlstate``,
    ``err.diag.constraint_name``). PostgreSQL gives no constraint name for 2BP01 (DROP of a
    referenced table): pass ``err.diag.message_detail`` as ``detail`` and the first key it
    names is used. None when the error is of another kind, or the name matches no foreign
    key or more than one (constraint names are unique per table only).
    """
    if sqlstate not in (FOREIGN_KEY_VIOLATION, DEPENDENT_OBJECTS_STILL_EXIST):
        return None
    if constraint is None and detail:
        named = _DEPENDS_ON.search(detail)
        constraint = named["name"] if named else None
    if constraint is None:
        return None
    try:
        keys = _foreign_keys(conn, constraint)
    except psycopg.Error as err:
        raise DatabaseError(f"Could not look up constraint {constraint}: {describe(err)}") from None
    if len(keys) != 1:
        return None
    (fk,) = keys
    relation = (f"{_side(fk.display, fk.columns)} references {_side(fk.ref_display, fk.ref_columns)} "
                f"(constraint {fk.name})")
    if sqlstate == DEPENDENT_OBJECTS_STILL_EXIST:
        return f"{relation}: drop or roll back {fk.display} first"
    return f"{relation}: write {fk.ref_display} rows before {fk.display} rows, and remove them in the reverse order"
